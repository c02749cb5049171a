"""Sentinel-2 SAFE products (L1C and L2A; a ``.SAFE`` folder or its ``.zip``) as one cube.

The JP2 bands are decoded by GDAL through rasterio and brought to one grid of 10, 20 or 60 m: a mean
over blocks when coarsening (no-data 0 left out), repetition (nearest) when refining. Values stay the
product's digital numbers (uint16); ``Cube.as_float32`` gives reflectance: (DN + offset) / 10000, with the
product's offset (-1000 from processing baseline 04.00) in ``metadata["add_offset"]``.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.file_kinds import MTD as _MTD
from napari_hsi_anomaly.core.file_kinds import is_safe  # noqa: F401  (re-exported)

S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
# Central wavelengths (nm) from ESA's spectral response functions.
S2A_NM = (442.7, 492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 945.1, 1373.5, 1613.7, 2202.4)
S2B_NM = (442.2, 492.1, 559.0, 664.9, 703.8, 739.1, 779.7, 832.9, 864.0, 943.2, 1376.9, 1610.4, 2185.7)
NATIVE_M = dict(zip(S2_BANDS, (60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20)))
RESOLUTIONS = (10, 20, 60)
DEFAULT_RESOLUTION = 60  # as in the thesis
STRIP_ROWS = 256  # output rows read per step (bounded memory on 10 m bands: ~70 MB at 60 m)
_BAND_FILE = re.compile(r"_(B\d\d|B8A)(?:_(\d+)m)?\.jp2$", re.IGNORECASE)
_SPECTRAL = re.compile(r'<Spectral_Information[^>]*physicalBand="(B\d+A?)"[^>]*>(.*?)</Spectral_Information>',
                       re.DOTALL)
_SCL_FILE = re.compile(r"_SCL_(\d+)m\.jp2$", re.IGNORECASE)
# Scene classification (L2A SCL) classes left out of the normal population by ``exclude_scl``:
# 0 no data, 1 saturated/defective, 3 cloud shadows, 6 water, 8/9 cloud medium/high probability,
# 10 thin cirrus, 11 snow.
SCL_EXCLUDE = (0, 1, 3, 6, 8, 9, 10, 11)
SCL_NAMES = {0: "no data", 1: "saturated or defective", 2: "dark area", 3: "cloud shadows", 4: "vegetation",
             5: "not vegetated", 6: "water", 7: "unclassified", 8: "cloud medium probability",
             9: "cloud high probability", 10: "thin cirrus", 11: "snow"}


@dataclass
class SafeProduct:
    """What a SAFE product holds: its level, the band files per resolution, the metadata XML text."""

    path: Path
    level: str  # "L1C" or "L2A"
    files: dict[str, dict[int, str]] = field(default_factory=dict)  # band -> {metres: GDAL path}
    mtd_xml: str | None = None
    scl: dict[int, str] = field(default_factory=dict)  # L2A scene classification: {metres: GDAL path}

    @property
    def spacecraft(self) -> str:
        """S2A, S2B, S2C, ...: the metadata's ``SPACECRAFT_NAME``, else the product name's prefix."""
        m = re.search(r"<SPACECRAFT_NAME>\s*Sentinel-2([A-Z])\s*<", self.mtd_xml or "", re.IGNORECASE)
        if m:
            return f"S2{m.group(1).upper()}"
        name = self.path.name.upper()
        return name[:3] if re.match(r"S2[A-Z]", name) else "S2A"

    def wavelengths(self) -> dict[str, float]:
        """Central wavelength (nm) per band from the metadata's ``Spectral_Information`` (the
        spacecraft's own values), else ESA's S2A/S2B tables (S2A's for a spacecraft without one)."""
        out: dict[str, float] = {}
        for m in _SPECTRAL.finditer(self.mtd_xml or ""):
            c = re.search(r"<CENTRAL[^>]*>\s*([\d.]+)\s*<", m.group(2))
            band = m.group(1).upper()
            band = band if band == "B8A" or len(band) == 3 else f"B0{band[1:]}"
            if c and band in S2_BANDS:
                out[band] = float(c.group(1))
        table = S2B_NM if self.spacecraft == "S2B" else S2A_NM
        return {b: out.get(b, table[i]) for i, b in enumerate(S2_BANDS)}


def _collect(names: list[str], prefix: str, product: SafeProduct) -> None:
    granules = set()
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if "IMG_DATA" not in parts or "GRANULE" not in parts:
            continue
        scl = _SCL_FILE.search(parts[-1])
        if scl is not None:
            product.scl[int(scl.group(1))] = prefix + name
            continue
        m = _BAND_FILE.search(parts[-1])
        if m is None:
            continue
        band = m.group(1).upper()
        if band not in NATIVE_M:
            continue
        granules.add(parts[parts.index("GRANULE") + 1])
        metres = int(m.group(2)) if m.group(2) else NATIVE_M[band]
        product.files.setdefault(band, {})[metres] = prefix + name
    if len(granules) > 1:
        raise CubeReadError(
            f"{product.path.name} holds {len(granules)} granules (an old multi-tile product); "
            "extract one granule's bands and open them separately."
        )


def find_product(path: str | Path) -> SafeProduct:
    """List the band files of a SAFE folder or zip (no pixels read)."""
    path = Path(path).expanduser()
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        mtd = next((n for n in names if _MTD.search(n) and "/" not in n), None)
        xml = _read_mtd(path, mtd, (path / mtd).open("rb"), (path / mtd).stat().st_size) if mtd else None
        prefix = str(path.resolve()) + "/"
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                mtd = min((n for n in names if _MTD.search(n)), key=len, default=None)
                xml = _read_mtd(path, mtd, zf.open(mtd), zf.getinfo(mtd).file_size) if mtd else None
        except (OSError, zipfile.BadZipFile) as exc:
            raise CubeReadError(f"{path.name} is not a readable zip file ({exc}).") from exc
        prefix = f"/vsizip/{path.resolve()}/"
    m = _MTD.search(mtd) if mtd else None
    l2a = (m is not None and m.group(1).upper() == "2A") or any("/R20m/" in n or "/R60m/" in n for n in names)
    level = "L2A" if l2a else "L1C"
    product = SafeProduct(path=path, level=level, mtd_xml=xml)
    _collect(names, prefix, product)
    if not product.files:
        raise CubeReadError(
            f"{path.name}: no Sentinel-2 band files (GRANULE/*/IMG_DATA/*_B??.jp2) were found in it."
        )
    return product


MTD_MAX_BYTES = 8 * 1024**2  # a product's metadata XML is about 60 kB; more is not a SAFE product's


def _read_mtd(path: Path, name: str, fh, declared: int) -> str:
    """The metadata XML's text, refused (one line) over ``MTD_MAX_BYTES`` before it is read or parsed:
    the size the folder or the zip directory declares first, then at most that many bytes are read (a
    zip member that lies about its size is cut off, not inflated)."""
    with fh:
        if declared > MTD_MAX_BYTES or len(data := fh.read(MTD_MAX_BYTES + 1)) > MTD_MAX_BYTES:
            from napari_hsi_anomaly.core.guards import human_bytes

            raise CubeReadError(f"{path.name}: its metadata {Path(name).name} is over "
                                f"{human_bytes(MTD_MAX_BYTES)} (a product's is about 60 kB), so it is not "
                                "read: not a Sentinel-2 product's metadata.")
    return data.decode("utf-8", errors="replace")


def _pick(options: dict[int, str], target: int) -> tuple[int, str]:
    """The file to resample from: the target resolution, else the nearest finer one, else the finest."""
    if target in options:
        return target, options[target]
    finer = [m for m in options if m < target]
    metres = max(finer) if finer else min(options)
    return metres, options[metres]


def _offsets(xml: str | None) -> dict[str, float]:
    """Per-band additive offsets (processing baseline >= 04.00: -1000), by band name."""
    if not xml:
        return {}
    out = {}
    for m in re.finditer(r'<(?:RADIO|BOA)_ADD_OFFSET\s+band_id="(\d+)"\s*>\s*(-?[\d.]+)\s*<', xml):
        k = int(m.group(1))
        if 0 <= k < len(S2_BANDS):
            out[S2_BANDS[k]] = float(m.group(2))
    return out


def _quantification(xml: str | None) -> float:
    m = re.search(r"<(?:BOA_)?QUANTIFICATION_VALUE[^>]*>\s*([\d.]+)\s*<", xml or "")
    return float(m.group(1)) if m else 10000.0


def _block_mean(block: np.ndarray, f: int) -> np.ndarray:
    """Mean over ``f x f`` blocks leaving out 0 (no-data); 0 where a block is all no-data."""
    h, w = block.shape[0] // f, block.shape[1] // f
    b = block[: h * f, : w * f].astype(np.float32).reshape(h, f, w, f)
    valid = (b != 0).sum(axis=(1, 3))
    total = b.sum(axis=(1, 3))
    return np.where(valid > 0, np.rint(total / np.maximum(valid, 1)), 0)


def _read_band(ds, metres: int, target: int, shape: tuple[int, int], out: np.ndarray) -> None:
    """Read one band into ``out (rows, cols)`` at ``target`` metres, strip by strip."""
    from rasterio.windows import Window

    rows, cols = shape
    if metres == target:
        out[:] = ds.read(1, window=Window(0, 0, cols, rows))
    elif metres < target:  # coarsen: mean of f x f blocks
        f = target // metres
        for r0 in range(0, rows, STRIP_ROWS):
            n = min(STRIP_ROWS, rows - r0)
            block = ds.read(1, window=Window(0, r0 * f, cols * f, n * f))
            out[r0 : r0 + n] = _block_mean(block, f)
    else:  # refine: nearest (each source pixel repeated f x f times)
        f = metres // target
        for r0 in range(0, rows, STRIP_ROWS):
            n = min(STRIP_ROWS, rows - r0)
            s0, s1 = r0 // f, (r0 + n - 1) // f + 1
            src = ds.read(1, window=Window(0, s0, -(-cols // f), s1 - s0))
            big = np.repeat(np.repeat(src, f, axis=0), f, axis=1)
            out[r0 : r0 + n] = big[r0 - s0 * f : r0 - s0 * f + n, :cols]


def read_safe(path: str | Path, resolution: int = DEFAULT_RESOLUTION) -> Cube:
    """A Sentinel-2 SAFE folder or zip as one ``(bands, rows, cols)`` uint16 cube at ``resolution`` m.

    Bands in the order B01..B12 with B8A after B08 (those present: L2A has no B10), wavelengths of the
    spacecraft (S2A/S2B), ``scale_factor`` the product's quantification (10000), no-data 0, and
    ``georef`` (CRS WKT and the transform of the chosen grid)."""
    import rasterio
    from rasterio.errors import RasterioError

    path = Path(path).expanduser()
    if resolution not in RESOLUTIONS:
        raise CubeReadError(f"{path.name}: resolution {resolution} m is not one of 10, 20 or 60 m.")
    product = find_product(path)
    bands = [b for b in S2_BANDS if b in product.files]
    picks = {b: _pick(product.files[b], resolution) for b in bands}
    try:
        ref_m, ref_file = picks[bands[0]]
        with rasterio.open(ref_file) as ds:
            f = resolution / ref_m
            shape = (int(ds.height / f), int(ds.width / f))
            transform = ds.transform * ds.transform.scale(f, f)
            crs = ds.crs.to_wkt() if ds.crs else None
        _check_memory((len(bands) + int(bool(product.scl))) * shape[0] * shape[1] * 2, path)  # + SCL
        data = np.zeros((len(bands), *shape), dtype=np.uint16)
        for k, b in enumerate(bands):
            metres, file = picks[b]
            with rasterio.open(file) as ds:
                need = (shape[0] * resolution / metres, shape[1] * resolution / metres)
                if ds.height < int(need[0]) or ds.width < int(need[1]):
                    raise CubeReadError(
                        f"{path.name}: band {b} ({ds.height}x{ds.width} at {metres} m) does not cover "
                        f"the {shape[0]}x{shape[1]} grid at {resolution} m of {bands[0]}."
                    )
                _read_band(ds, metres, resolution, shape, data[k])
    except RasterioError as exc:
        raise CubeReadError(f"{path.name}: cannot read a band through GDAL ({exc}).") from exc
    nm = product.wavelengths()
    wl = [nm[b] for b in bands]
    meta: dict = {
        "safe": {"level": product.level, "resolution": resolution, "spacecraft": product.spacecraft,
                 "sources": {b: f"{picks[b][0]} m" for b in bands}},
    }
    offsets = {b: v for b, v in _offsets(product.mtd_xml).items() if b in bands and v != 0}
    if offsets:  # Cube.as_float32 adds them before dividing by the quantification value
        meta["safe"]["add_offset"] = offsets
        meta["add_offset"] = np.array([offsets.get(b, 0.0) for b in bands], dtype=np.float32)
        meta["notes"] = [
            f"reflectance = (DN + offset) / {_quantification(product.mtd_xml):g} with offset "
            f"{next(iter(offsets.values())):g} (processing baseline 04.00+); the file values stay DN"
        ]
    if product.scl:
        meta["scl"] = _read_scl(product, resolution, shape)
    rgb = None
    if {"B02", "B03", "B04"} <= set(bands):
        rgb = tuple(bands.index(b) for b in ("B04", "B03", "B02"))
    return Cube(
        data=data,
        wavelengths=np.array(wl),
        band_names=bands,
        units="reflectance",
        nodata=0.0,
        scale_factor=_quantification(product.mtd_xml),
        source=path,
        default_bands=rgb,  # type: ignore[arg-type]
        interleave="bsq",
        metadata=meta,
        georef={"crs": crs, "transform": tuple(transform)[:6]},
    )


def _read_scl(product: SafeProduct, resolution: int, shape: tuple[int, int]) -> np.ndarray | None:
    """The L2A scene classification on the cube's grid (nearest: the class at each pixel's centre)."""
    import rasterio
    from rasterio.enums import Resampling

    metres, file = _pick(product.scl, resolution)
    try:
        with rasterio.open(file) as ds:
            return ds.read(1, out_shape=shape, resampling=Resampling.nearest).astype(np.uint8)
    except Exception:  # noqa: BLE001 - the classification is an extra: the cube reads without it
        return None


def scl_mask(cube: Cube, classes: tuple[int, ...] = SCL_EXCLUDE) -> np.ndarray | None:
    """``(rows, cols)`` bool: pixels whose scene class is one of ``classes`` (clouds, shadows, water,
    ... by default); None when the cube has no classification (not an L2A product)."""
    scl = cube.metadata.get("scl")
    if not isinstance(scl, np.ndarray) or scl.shape != (cube.rows, cube.cols):
        return None
    return np.isin(scl, np.asarray(classes, dtype=np.uint8))


def exclude_scl(cube: Cube, classes: tuple[int, ...] = SCL_EXCLUDE) -> Cube:
    """The cube with the ``classes`` pixels marked as no-data (``Cube.fill``), to fit a normal model
    on clear land only (score the original cube: those pixels keep their scores). Unchanged without
    a scene classification."""
    from dataclasses import replace

    mask = scl_mask(cube, classes)
    if mask is None or not mask.any():
        return cube
    fill = mask if cube.fill is None else (cube.fill | mask)
    return replace(cube, fill=fill, metadata={**cube.metadata, "scl_excluded": int(mask.sum())})


def find_products(folder: str | Path) -> list[Path]:
    """The ``.SAFE`` folders inside ``folder`` (at any depth; a product's own subfolders are not
    searched), sorted; zips are cube files that ``batch`` lists already."""
    root = Path(folder).expanduser()
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for p in entries:
            if p.is_dir() and not p.name.startswith("."):
                if p.suffix.upper() == ".SAFE":
                    found.append(p)
                elif depth < 8:
                    walk(p, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return found


def _check_memory(nbytes: int, path: Path) -> None:
    try:
        from napari_hsi_anomaly.core.guards import check_allocation
    except ImportError:  # the guards module arrives with another change
        return
    check_allocation(nbytes, f"{path.name} as one cube",
                     hint="read it on a coarser grid (--resolution 20 or 60)")
