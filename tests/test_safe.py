"""Sentinel-2 SAFE reader on miniature L1C / L2A products written here with rasterio (JP2 via GDAL)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from napari_hsi_anomaly.core.bands import default_band_selection
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.io.safe import NATIVE_M, S2_BANDS, S2B_NM, is_safe

N60 = 3  # pixels per side at 60 m (18 at 10 m)
ORIGIN = (600000.0, 5000040.0)
L2A_RES = {  # what the L2A R10m / R20m / R60m folders hold
    10: ("B02", "B03", "B04", "B08"),
    20: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"),
    60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"),
}
JP2 = {"driver": "JP2OpenJPEG", "QUALITY": "100", "REVERSIBLE": "YES"}


def truth10(band: str) -> np.ndarray:
    """The band's 'true' 10 m field: smooth-ish integers, distinct per band, one no-data pixel."""
    k = S2_BANDS.index(band)
    rng = np.random.default_rng(k)
    arr = rng.integers(100, 5000, size=(N60 * 6, N60 * 6)).astype(np.uint16)
    arr[0, 0] = 0  # no-data at the corner
    return arr


def block_mean(arr: np.ndarray, f: int) -> np.ndarray:
    h, w = arr.shape[0] // f, arr.shape[1] // f
    b = arr.astype(np.float64).reshape(h, f, w, f)
    n = (b != 0).sum(axis=(1, 3))
    return np.where(n > 0, np.rint(b.sum(axis=(1, 3)) / np.maximum(n, 1)), 0).astype(np.uint16)


def at(band: str, metres: int) -> np.ndarray:
    return truth10(band) if metres == 10 else block_mean(truth10(band), metres // 10)


def expected(band: str, stored: int, target: int) -> np.ndarray:
    """What the reader should give at ``target`` m from the file stored at ``stored`` m."""
    arr = at(band, stored)
    if stored < target:
        return block_mean(arr, target // stored)
    f = stored // target
    return np.repeat(np.repeat(arr, f, 0), f, 1)


def _write_band(path: Path, arr: np.ndarray, metres: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(width=arr.shape[1], height=arr.shape[0], count=1, dtype="uint16", crs="EPSG:32633",
                   transform=from_origin(*ORIGIN, metres, metres))
    with rasterio.open(path, "w", **JP2, **profile) as ds:
        ds.write(arr, 1)


def make_safe(root: Path, level: str = "L1C", spacecraft: str = "S2A", offset: bool = False) -> Path:
    name = f"{spacecraft}_MSI{level}_20200101T101031_N0400_R022_T33UUP_20200101T121212.SAFE"
    safe = root / name
    granule = safe / "GRANULE" / f"{level}_T33UUP_A000001_20200101T101031" / "IMG_DATA"
    stem = "T33UUP_20200101T101031"
    if level == "L1C":
        for b in S2_BANDS:
            _write_band(granule / f"{stem}_{b}.jp2", at(b, NATIVE_M[b]), NATIVE_M[b])
        _write_band(granule / f"{stem}_TCI.jp2", at("B02", 10), 10)  # true colour: ignored
    else:
        for metres, bands in L2A_RES.items():
            for b in bands:
                _write_band(granule / f"R{metres}m" / f"{stem}_{b}_{metres}m.jp2", at(b, metres), metres)
            _write_band(granule / f"R{metres}m" / f"{stem}_SCL_{metres}m.jp2", at("B02", metres), metres)
    tag = "RADIO" if level == "L1C" else "BOA"
    offsets = "".join(f'<{tag}_ADD_OFFSET band_id="{k}">-1000</{tag}_ADD_OFFSET>' for k in range(13))
    (safe / f"MTD_MSI{level}.xml").write_text(
        f"<root><QUANTIFICATION_VALUE unit='none'>10000</QUANTIFICATION_VALUE>{offsets if offset else ''}"
        "</root>"
    )
    return safe


def zip_safe(safe: Path) -> Path:
    out = safe.parent / (safe.stem + ".zip")
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(safe.rglob("*")):
            zf.write(p, p.relative_to(safe.parent).as_posix())
    return out


@pytest.fixture(scope="module")
def l1c(tmp_path_factory) -> Path:
    return make_safe(tmp_path_factory.mktemp("l1c"), "L1C")


@pytest.fixture(scope="module")
def l2a(tmp_path_factory) -> Path:
    return make_safe(tmp_path_factory.mktemp("l2a"), "L2A", spacecraft="S2B", offset=True)


def test_jp2_files_are_real_jpeg2000(l1c):
    files = list(l1c.rglob("*_B02.jp2"))
    assert files and files[0].read_bytes()[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n"  # JP2 signature box
    with rasterio.open(files[0]) as ds:
        assert ds.driver == "JP2OpenJPEG"


def test_l1c_at_60m_default(l1c):
    cube = read_cube(l1c)
    assert cube.shape == (13, N60, N60) and cube.dtype == np.uint16
    assert cube.band_names == list(S2_BANDS) and cube.wavelengths[10] == pytest.approx(1373.5)
    for b in S2_BANDS:  # 10 m and 20 m bands averaged (no-data left out), 60 m bands as they are
        np.testing.assert_array_equal(cube.data[S2_BANDS.index(b)], expected(b, NATIVE_M[b], 60), b)
    assert cube.scale_factor == 10000 and cube.nodata == 0 and cube.units == "reflectance"
    assert cube.georef["transform"] == pytest.approx((60, 0, ORIGIN[0], 0, -60, ORIGIN[1]))
    assert "32633" in cube.georef["crs"] or "UTM zone 33N" in cube.georef["crs"]
    assert cube.rgb_bands() == (3, 2, 1) and cube.metadata["safe"]["level"] == "L1C"
    assert 10 not in default_band_selection(cube)  # B10 cirrus left out by default
    assert cube.value_label() == "reflectance (scale 10000 applied)"
    from napari_hsi_anomaly.core.io import describe

    text = describe(cube)
    assert "EPSG:32633, pixel 60 x 60, origin (600000, 5000040)" in text and "S2A L1C at 60 m" in text


@pytest.mark.parametrize("metres", [10, 20])
def test_l1c_finer_grids_repeat_coarse_bands(l1c, metres):
    cube = read_cube(l1c, resolution=metres)
    n = N60 * 60 // metres
    assert cube.shape == (13, n, n)
    f = 60 // metres
    np.testing.assert_array_equal(cube.data[0], np.repeat(np.repeat(at("B01", 60), f, 0), f, 1))
    np.testing.assert_array_equal(cube.data[1], at("B02", metres))  # 10 m band averaged or as is
    if metres == 10:
        np.testing.assert_array_equal(cube.data[4], np.repeat(np.repeat(at("B05", 20), 2, 0), 2, 1))
    assert cube.georef["transform"][0] == metres and cube.georef["transform"][2] == ORIGIN[0]


def test_l2a_uses_the_resolution_folders(l2a):
    cube = read_cube(l2a, resolution=20)
    assert cube.band_names == [b for b in S2_BANDS if b != "B10"]  # L2A has no cirrus band
    assert cube.shape == (12, N60 * 3, N60 * 3)
    names = cube.band_names
    np.testing.assert_array_equal(cube.data[names.index("B8A")], at("B8A", 20))
    np.testing.assert_array_equal(cube.data[names.index("B08")], at("B08", 20))  # only at 10 m: averaged
    np.testing.assert_array_equal(  # only at 60 m: repeated
        cube.data[names.index("B09")], np.repeat(np.repeat(at("B09", 60), 3, 0), 3, 1)
    )
    assert cube.metadata["safe"]["sources"]["B08"] == "10 m"
    assert cube.wavelengths[names.index("B12")] == pytest.approx(S2B_NM[-1])  # S2B centres
    assert cube.metadata["safe"]["add_offset"]["B02"] == -1000
    assert any("offset -1000" in n for n in cube.metadata["notes"])
    k = names.index("B8A")  # as_float32: (DN - 1000) / 10000
    refl = cube.as_float32()[k]
    np.testing.assert_allclose(refl, (at("B8A", 20).astype(np.float32) - 1000) / 10000, rtol=1e-6)
    sel = cube.select_bands([k])
    np.testing.assert_allclose(sel.as_float32()[0], refl)
    assert read_cube(l2a, resolution=60).shape == (12, N60, N60)


def test_zip_reads_like_the_folder(l1c, l2a):
    for safe in (l1c, l2a):
        z = zip_safe(safe)
        assert is_safe(z) and is_safe(safe)
        a, b = read_cube(safe, resolution=20), read_cube(z, resolution=20)
        np.testing.assert_array_equal(a.data, b.data)
        assert a.georef == b.georef and a.band_names == b.band_names
        assert a.metadata["safe"] == b.metadata["safe"]  # level, spacecraft, sources


def test_safe_through_napari_reader(l1c):
    from napari_hsi_anomaly._reader import get_reader

    reader = get_reader(str(l1c))
    assert reader is not None
    layers = reader(str(l1c))
    assert layers[0][0].shape == (13, N60, N60) and layers[0][1]["metadata"]["cube"].georef


def test_bad_safe_inputs(tmp_path, l1c):
    with pytest.raises(CubeReadError, match="10, 20 or 60"):
        read_cube(l1c, resolution=30)
    empty = tmp_path / "S2A_MSIL1C_EMPTY.SAFE"
    (empty / "GRANULE").mkdir(parents=True)
    with pytest.raises(CubeReadError, match="no Sentinel-2 band files"):
        read_cube(empty)
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CubeReadError):
        read_cube(bad)
    other = tmp_path / "plain_folder"
    other.mkdir()
    with pytest.raises(CubeReadError, match="folder"):
        read_cube(other)


def test_memory_budget_is_checked_before_reading(l1c, monkeypatch):
    from napari_hsi_anomaly.core.errors import HsiAnomalyError

    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "2K")  # 13 x 18 x 18 uint16 is 8.4 KB
    with pytest.raises(HsiAnomalyError, match="coarser grid"):
        read_cube(l1c, resolution=10)
    assert read_cube(l1c, resolution=60).shape == (13, N60, N60)  # 234 bytes fit
