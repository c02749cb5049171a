"""What files an input is: an ENVI header and its data file, a Sentinel-2 SAFE product (folder or zip).

Path logic only (standard library), below both ``guards`` (which files an output must not overwrite,
whether a folder is an input) and the readers in ``core.io``, which re-export these names.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from napari_hsi_anomaly.core.errors import CubeReadError

DATA_SUFFIXES = (".img", ".dat", ".raw", ".bsq", ".bil", ".bip", "")  # ENVI data files
MTD = re.compile(r"(?:^|/)MTD_MSIL(1C|2A)\.xml$", re.IGNORECASE)  # a SAFE product's metadata file


def find_pair(path: Path) -> tuple[Path, Path]:
    """(header, data file) for ``path``, which may be either of the two."""
    if path.suffix.lower() == ".hdr":
        hdr = path
        bases = [path.with_suffix(""), path.with_name(path.name[: -len(".hdr")])]
        for base in dict.fromkeys(bases):
            if base.suffix.lower() in DATA_SUFFIXES[:-1] and base.is_file():
                return hdr, base  # x.img.hdr convention
            for suf in DATA_SUFFIXES:
                for cand in {base.with_name(base.name + suf), base.with_name(base.name + suf.upper())}:
                    if cand.is_file() and cand != hdr:
                        return hdr, cand
        tried = ", ".join(s or "(none)" for s in DATA_SUFFIXES)
        raise CubeReadError(
            f"{hdr.name}: the data file is missing (looked for {path.stem} with extension {tried})."
        )
    for cand in (
        path.with_suffix(".hdr"),
        path.with_suffix(".HDR"),
        path.with_name(path.name + ".hdr"),
        path.with_name(path.name + ".HDR"),
    ):
        if cand.is_file() and cand != path:
            return cand, path
    raise CubeReadError(f"{path.name}: no ENVI header found next to it ({path.stem}.hdr).")


def is_safe(path: str | Path) -> bool:
    """Whether ``path`` is a SAFE folder (``*.SAFE`` or one holding ``MTD_MSIL*.xml``) or a zip of one."""
    path = Path(path)
    if path.is_dir():
        return path.suffix.upper() == ".SAFE" or any(path.glob("MTD_MSIL*.xml"))
    if path.suffix.lower() == ".zip" and path.is_file():
        try:
            with zipfile.ZipFile(path) as zf:
                return any(MTD.search(n) or ".SAFE/GRANULE/" in n.upper() for n in zf.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    return False
