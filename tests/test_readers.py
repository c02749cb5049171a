"""Readers: the real files in ../shared/data, every ENVI variant, and bad inputs made here."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_hsi_anomaly.core.errors import CubeReadError, HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.io import read_cube

HSI_AD = [
    "abu-airport-1",
    "abu-airport-3",
    "abu-beach-1",
    "abu-beach-2",
    "abu-urban-1",
    "abu-urban-3",
    "abu-urban-5",
    "san-diego",
    "san-diego-plane",
]


# --- real ENVI files -------------------------------------------------------------------------


def test_jasper_ridge_bil_int16(shared_data):
    hdr = shared_data / "envi" / "jasperRidge2_R198.hdr"
    cube = read_cube(hdr)
    assert cube.shape == (198, 100, 100)
    assert cube.dtype == np.int16
    assert cube.interleave == "bil"
    assert isinstance(cube.data, np.memmap)  # not read whole
    assert cube.scale_factor == 10000.0
    assert cube.default_bands == (31, 16, 3)  # {32,17,4} 1-based in the header
    wl = cube.wavelengths
    assert wl[0] == pytest.approx(399.369995) and wl[-1] == pytest.approx(2457.23999)
    assert wl[29] == pytest.approx(664.140015) and wl[28] == pytest.approx(675.619995)
    assert int(np.sum(np.diff(wl) < 0)) == 2  # file order kept, not sorted
    # independent read: BIL is (lines, bands, samples)
    raw = np.fromfile(hdr.with_suffix(".img"), dtype="<i2").reshape(100, 198, 100)
    for b, r, c in [(0, 0, 0), (100, 50, 7), (197, 99, 99), (31, 3, 60)]:
        assert cube.data[b, r, c] == raw[r, b, c]
    np.testing.assert_array_equal(cube.data[:, 10, :], raw[10])


def test_jasper_ridge_matches_spectral_python(shared_data):
    import spectral

    hdr = shared_data / "envi" / "jasperRidge2_R198.hdr"
    spy = spectral.open_image(str(hdr)).open_memmap()  # (rows, cols, bands)
    np.testing.assert_array_equal(read_cube(hdr).data, np.moveaxis(spy, -1, 0))


@pytest.mark.parametrize("name", ["can_tmr.hdr", "can_tmr.img"])
def test_can_tmr_bsq_uint8_without_byte_order(shared_data, name):
    cube = read_cube(shared_data / "envi" / name)
    assert cube.shape == (6, 400, 640)
    assert cube.dtype == np.uint8
    assert cube.interleave == "bsq"
    np.testing.assert_allclose(cube.wavelengths, [485, 560, 660, 830, 1650, 2215])
    assert cube.band_names[0] == "TM Band 1" and cube.band_names[5] == "TM Band 7"
    raw = np.fromfile(shared_data / "envi" / "can_tmr.img", dtype=np.uint8).reshape(6, 400, 640)
    for b, r, c in [(0, 0, 0), (3, 200, 320), (5, 399, 639), (2, 17, 601)]:
        assert cube.data[b, r, c] == raw[b, r, c]
    np.testing.assert_array_equal(cube.data[4], raw[4])


# --- real NumPy files ------------------------------------------------------------------------


@pytest.mark.parametrize("stem", HSI_AD)
def test_hsi_ad_npz_transposed(shared_data, stem):
    path = shared_data / "hsi-ad" / f"{stem}.npz"
    with np.load(path) as z:
        ref, gt = z["cube"], z["gt"]
    cube = read_cube(path)
    rows, cols, bands = ref.shape
    assert cube.shape == (bands, rows, cols)
    rng = np.random.default_rng(0)
    for b, r, c in zip(rng.integers(0, bands, 20), rng.integers(0, rows, 20), rng.integers(0, cols, 20)):
        assert cube.data[b, r, c] == ref[r, c, b]
    np.testing.assert_array_equal(cube.data[:, 3, 5], ref[3, 5])
    np.testing.assert_array_equal(cube.metadata["gt"], gt)
    assert cube.wavelengths is None


def test_sentinel2_time_series_npy_needs_a_date(shared_data):
    path = shared_data / "sentinel2" / "eo-learn_REFERENCE_SCENES.npy"
    with pytest.raises(ShapeError, match=r"4-D array \(5, 101, 100, 13\).*--date K \(1-5; dates count"):
        read_cube(path)
    cube = read_cube(path, date=3)
    assert cube.shape == (13, 101, 100)
    np.testing.assert_array_equal(cube.data[7], np.load(path, mmap_mode="r")[3, :, :, 7])


def test_sentinel2_npz_with_wavelengths_and_names(shared_data):
    path = shared_data / "sentinel2" / "sentinel2-eolearn-ref.npz"
    cube = read_cube(path)
    assert cube.shape == (13, 101, 100)
    assert cube.wavelengths[0] == pytest.approx(442.7, abs=0.01)
    assert cube.wavelengths[-1] == pytest.approx(2202.4, abs=0.01)
    assert cube.band_names[8] == "B8A"
    with np.load(path) as z:
        stack = z["stack"]
        np.testing.assert_array_equal(cube.data[4], z["cube"][..., 4])
    # another key through ``key=``: a 4-D stack is refused with the same clear error
    with pytest.raises(ShapeError, match="4-D"):
        read_cube(path, key="stack")
    assert stack.shape == (5, 101, 100, 13)


# --- ENVI variants made here -----------------------------------------------------------------


def _envi(tmp_path, data, interleave="bsq", dtype_code=None, byte_order="0", extra="", name="x"):
    """Write ``data (bands, rows, cols)`` in ``interleave`` with a hand-written header."""
    from napari_hsi_anomaly.core.io.envi_header import DTYPE_TO_ENVI

    bands, rows, cols = data.shape
    order = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}[interleave]
    dt = data.dtype.newbyteorder(">" if byte_order == "1" else "<")
    np.ascontiguousarray(data.transpose(order), dtype=dt).tofile(tmp_path / f"{name}.img")
    code = dtype_code or DTYPE_TO_ENVI[data.dtype.str.lstrip("<>|=")]
    bo = f"byte order = {byte_order}\n" if byte_order is not None else ""
    hdr = tmp_path / f"{name}.hdr"
    hdr.write_text(
        f"ENVI\nsamples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = 0\n"
        f"data type = {code}\ninterleave = {interleave}\n{bo}{extra}"
    )
    return hdr


ENVI_TYPES = ["u1", "i2", "i4", "f4", "f8", "c8", "c16", "u2", "u4", "i8", "u8"]


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("dtype", ENVI_TYPES)
def test_envi_every_type_and_interleave(tmp_path, dtype, interleave):
    data = (np.arange(3 * 4 * 5) % 50).reshape(3, 4, 5).astype(dtype)
    for byte_order in ("0", "1"):
        cube = read_cube(_envi(tmp_path, data, interleave, byte_order=byte_order))
        assert cube.shape == (3, 4, 5)
        assert cube.dtype.newbyteorder("=") == np.dtype(dtype)  # same values, file byte order
        np.testing.assert_array_equal(cube.data, data)


def test_envi_tolerant_header(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    hdr = _envi(tmp_path, data, "bil", byte_order="0")
    text = hdr.read_text().replace("samples", "SAMPLES").replace("interleave = bil", "Interleave = BIL")
    text += (
        "; a comment line\n"
        "Wavelength Units = Micrometers\n"
        "wavelength = {\n 0.5,\n 0.6 }\n"
        "band names = {red,\n nir}\n"
        "Default Bands = {2}\n"
        "data ignore value = 7\n"
        "reflectance scale factor = 1000\n"
    )
    hdr.write_bytes(text.replace("\n", "\r\n").encode())
    cube = read_cube(hdr)
    np.testing.assert_array_equal(cube.data, data)
    np.testing.assert_allclose(cube.wavelengths, [500, 600])
    assert cube.band_names == ["red", "nir"]
    assert cube.default_bands == (1, 1, 1)
    assert cube.nodata == 7 and cube.scale_factor == 1000
    assert not cube.valid_mask()[1, 3]  # value 7 is in band 0 at (1, 3)
    assert cube.valid_mask().sum() == 11


def test_envi_bom_and_trailing_comma(tmp_path):
    data = np.zeros((2, 2, 2), dtype=np.uint8)
    hdr = _envi(tmp_path, data, byte_order=None, extra="wavelength = {500, 600,}\n")
    hdr.write_bytes(b"\xef\xbb\xbf" + hdr.read_bytes())
    np.testing.assert_allclose(read_cube(hdr).wavelengths, [500, 600])


def test_envi_wavelengths_below_100_without_units_are_micrometres(tmp_path):
    data = np.zeros((2, 2, 2), dtype=np.uint8)
    cube = read_cube(_envi(tmp_path, data, byte_order=None, extra="wavelength = {0.45, 2.2}\n"))
    np.testing.assert_allclose(cube.wavelengths, [450, 2200])


def test_envi_missing_data_file(tmp_path):
    hdr = _envi(tmp_path, np.zeros((2, 3, 4), np.uint8))
    (tmp_path / "x.img").unlink()
    with pytest.raises(CubeReadError, match="x.hdr.*data file is missing"):
        read_cube(hdr)


def test_envi_truncated_and_too_long(tmp_path):
    hdr = _envi(tmp_path, np.zeros((6, 40, 64), np.uint8))
    img = tmp_path / "x.img"
    img.write_bytes(img.read_bytes()[:1234])
    with pytest.raises(CubeReadError) as err:
        read_cube(hdr)
    msg = str(err.value)
    assert "x.img is 1,234 bytes" in msg and "40 lines x 64 samples x 6 bands, uint8" in msg
    assert "needs 15,360" in msg and "truncated" in msg
    img.write_bytes(bytes(15_361))
    with pytest.raises(CubeReadError, match="longer than the header"):
        read_cube(hdr)


def test_envi_header_lying_about_dimensions(tmp_path):
    hdr = _envi(tmp_path, np.zeros((2, 3, 4), np.int16))
    hdr.write_text(hdr.read_text().replace("lines = 3", "lines = 30"))
    with pytest.raises(CubeReadError, match="48 bytes but the header .* needs 480"):
        read_cube(hdr)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("data type = 1", "data type = 7"), "unknown ENVI data type 7"),
        (("samples = 4\n", ""), "no 'samples'"),
        (("lines = 3\n", ""), "no 'lines'"),
        (("bands = 2\n", ""), "no 'bands'"),
        (("data type = 1\n", ""), "no 'data type'"),
        (("samples = 4", "samples = four"), "'samples = four' is not a number"),
        (("interleave = bsq", "interleave = bxx"), "unknown interleave 'bxx'"),
    ],
)
def test_envi_bad_headers(tmp_path, change, message):
    hdr = _envi(tmp_path, np.zeros((2, 3, 4), np.uint8))
    hdr.write_text(hdr.read_text().replace(*change))
    with pytest.raises(CubeReadError, match=message):
        read_cube(hdr)


def test_envi_missing_byte_order_for_multibyte_data(tmp_path):
    hdr = _envi(tmp_path, np.zeros((2, 3, 4), np.int16), byte_order=None)
    with pytest.raises(CubeReadError, match="no 'byte order'.*2-byte"):
        read_cube(hdr)


def test_not_an_envi_header(tmp_path):
    (tmp_path / "x.img").write_bytes(bytes(24))
    (tmp_path / "x.hdr").write_text("hello world\nsamples = 4\n")
    with pytest.raises(CubeReadError, match="not an ENVI header"):
        read_cube(tmp_path / "x.hdr")
    (tmp_path / "x.hdr").write_bytes(np.random.default_rng(0).bytes(300) + b"\x00")
    with pytest.raises(CubeReadError, match="not an ENVI header"):
        read_cube(tmp_path / "x.hdr")


# --- NumPy and TIFF made here ----------------------------------------------------------------


def test_npy_layouts_and_memmap(tmp_path):
    arr = np.random.default_rng(1).random((5, 6, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    cube = read_cube(tmp_path / "a.npy")
    assert cube.shape == (3, 5, 6) and isinstance(cube.data, np.memmap)
    np.testing.assert_array_equal(cube.data[2], arr[..., 2])
    first = read_cube(tmp_path / "a.npy", layout="bands-first")
    assert first.shape == (5, 6, 3)
    np.testing.assert_array_equal(first.data, arr)
    assert read_cube(tmp_path / "a.npy", layout="auto").shape == (3, 5, 6)
    with pytest.raises(CubeReadError, match="Unknown layout"):
        read_cube(tmp_path / "a.npy", layout="sideways")


def test_npy_2d_1d_and_empty_are_shape_errors(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((4, 5)))
    with pytest.raises(ShapeError, match="2-D array"):
        read_cube(tmp_path / "m.npy")
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(ShapeError, match="1-D array"):
        read_cube(tmp_path / "v.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 5, 3)))
    with pytest.raises(ShapeError, match="empty"):
        read_cube(tmp_path / "e.npy")


def test_npy_object_array_is_a_read_error(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(CubeReadError, match="o.npy"):
        read_cube(tmp_path / "o.npy")


def test_nan_and_inf_pixels_are_kept(tmp_path):
    arr = np.ones((4, 5, 3), dtype=np.float32)
    arr[1, 2, 0] = np.nan
    arr[3, 4, 2] = np.inf
    np.save(tmp_path / "n.npy", arr)
    cube = read_cube(tmp_path / "n.npy")
    assert np.isnan(cube.data[0, 1, 2]) and np.isinf(cube.data[2, 3, 4])
    mask = cube.valid_mask()
    assert not mask[1, 2] and not mask[3, 4] and mask.sum() == 18


def test_npz_without_cube_lists_keys(tmp_path):
    np.savez(tmp_path / "z.npz", data=np.zeros((3, 4, 2)), labels=np.zeros((3, 4)))
    with pytest.raises(CubeReadError, match="no array 'cube'.*data, labels"):
        read_cube(tmp_path / "z.npz")
    assert read_cube(tmp_path / "z.npz", key="data").shape == (2, 3, 4)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".tif", ".hdr", ".img"])
def test_text_file_renamed_is_a_read_error(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are some notes, not a cube\n" * 10)
    with pytest.raises(CubeReadError, match="notes"):
        read_cube(path)


def test_missing_path_folder_and_unknown_suffix(tmp_path):
    with pytest.raises(CubeReadError, match="does not exist"):
        read_cube(tmp_path / "nope.npy")
    with pytest.raises(CubeReadError, match="folder"):
        read_cube(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(CubeReadError, match="unknown cube format"):
        read_cube(tmp_path / "a.png")


def test_tiff_samples_and_pages(tmp_path):
    arr = np.random.default_rng(2).random((5, 6, 4)).astype(np.float32)  # rows, cols, samples
    tifffile.imwrite(tmp_path / "s.tif", arr, photometric="minisblack", planarconfig="contig")
    cube = read_cube(tmp_path / "s.tif")
    assert cube.shape == (4, 5, 6)
    np.testing.assert_array_equal(cube.data[3], arr[..., 3])
    pages = np.moveaxis(arr, -1, 0)  # bands as pages
    with tifffile.TiffWriter(tmp_path / "p.tiff") as tw:
        for band in pages:
            tw.write(band, photometric="minisblack", metadata=None)
    cube = read_cube(tmp_path / "p.tiff")
    assert cube.shape == (4, 5, 6)
    np.testing.assert_array_equal(cube.data, pages)


def test_tiff_compressed_is_read_and_geotags_kept(tmp_path):
    arr = np.arange(5 * 6 * 3, dtype=np.uint16).reshape(5, 6, 3)
    tags = [
        (33550, "d", 3, (30.0, 30.0, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0), True),
        (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1), True),
        (42113, "s", 0, "65535", True),
    ]
    tifffile.imwrite(
        tmp_path / "g.tif",
        arr,
        photometric="minisblack",
        planarconfig="contig",
        compression="zlib",
        extratags=tags,
    )
    cube = read_cube(tmp_path / "g.tif")
    np.testing.assert_array_equal(cube.data, np.moveaxis(arr, -1, 0))
    geo = cube.metadata["geotiff"]
    assert geo["ModelPixelScaleTag"] == (30.0, 30.0, 0.0)
    assert geo["ModelTiepointTag"][3] == 500000.0
    assert geo["GeoKeyDirectoryTag"] == (1, 1, 0, 1, 1024, 0, 1, 1)
    assert cube.nodata == 65535


def test_tiff_2d_is_a_shape_error(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", np.zeros((4, 5), np.float32))
    with pytest.raises(HsiAnomalyError, match="2-D"):
        read_cube(tmp_path / "m.tif")
