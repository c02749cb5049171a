"""The Detect and Inspect screenshots alone (03_detect, 04_inspect); see ``docs/screenshots.py``.

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/screenshots_detect.py [--size 1920x1080]
"""

from __future__ import annotations

import sys

from screenshots import main

if __name__ == "__main__":
    sys.argv += ["--stages", "launch,detect,inspect"] if "--stages" not in sys.argv else []
    main()
