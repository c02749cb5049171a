"""``python -m napari_hsi_anomaly [FILE]``: open napari with the file (or the sample scene) and the docks."""

import sys

from napari_hsi_anomaly.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["view", *sys.argv[1:]]))
