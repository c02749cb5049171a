"""Band selections: text ranges, ENVI ``bbl``, Sentinel-2 cirrus, ``Cube.select_bands``, value labels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hsi_anomaly.core.bands import (
    BandSubset,
    default_band_selection,
    format_band_spec,
    parse_band_spec,
)
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.io import read_cube, write_cube

S2_NAMES = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
S2_NM = [442.7, 492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 945.1, 1373.5, 1613.7, 2202.4]


def test_parse_band_spec_ranges_one_based_inclusive():
    idx = parse_band_spec("1-100, 110-150", 200)
    assert idx[0] == 0 and idx[99] == 99 and idx[100] == 109 and idx[-1] == 149
    assert idx.size == 100 + 41
    assert parse_band_spec(" 3 ;5..6, 2 ", 10).tolist() == [1, 2, 4, 5]
    assert format_band_spec(parse_band_spec("1-100, 110-150, 160", 200)) == "1-100, 110-150, 160"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "Empty"),
        ("1-", "not a band or a range"),
        ("a-b", "not a band or a range"),
        ("10-3", "backwards"),
        ("0-5", "outside 1-20"),
        ("5-21", "outside 1-20"),
        (",", "Empty"),
    ],
)
def test_parse_band_spec_errors_are_clear(spec, message):
    with pytest.raises(HsiAnomalyError, match=message):
        parse_band_spec(spec, 20)


def test_default_selection_uses_bbl_floats_from_envi(tmp_path):
    data = np.arange(5 * 3 * 4, dtype=np.float32).reshape(5, 3, 4)
    path = write_cube(tmp_path / "c.hdr", Cube(data))
    text = path.read_text() + "bbl = {1.0, 0.0, 1.000000, 0, 1}\n"  # AVIRIS-NG style floats
    path.write_text(text)
    cube = read_cube(path)
    assert default_band_selection(cube).tolist() == [0, 2, 4]


def test_default_selection_drops_sentinel2_atmospheric_bands_by_name_or_wavelength():
    data = np.zeros((13, 2, 2), dtype=np.uint16)
    surface = [i for i in range(13) if i not in (9, 10)]
    assert default_band_selection(Cube(data, band_names=S2_NAMES)).tolist() == surface
    assert default_band_selection(Cube(data, wavelengths=S2_NM)).tolist() == surface
    assert default_band_selection(Cube(data)) is None  # nothing known: every band
    l2a = [i for i in range(13) if i != 10]  # L2A: no cirrus band; B09 still left out
    assert default_band_selection(Cube(data[l2a], band_names=[S2_NAMES[i] for i in l2a])).tolist() == [
        i for i in range(12) if i != 9
    ]
    hyper = np.zeros((40, 2, 2), dtype=np.uint16)  # a hyperspectral 945 nm band is one of many: kept
    assert default_band_selection(Cube(hyper, wavelengths=np.linspace(900, 990, 40))) is None


def test_select_bands_is_a_view_keeping_band_metadata(tmp_path):
    data = np.random.default_rng(0).random((13, 6, 5)).astype(np.float32)
    cube = Cube(data, wavelengths=S2_NM, band_names=S2_NAMES, units="reflectance", scale_factor=1.0,
                default_bands=(3, 2, 1), georef={"crs": "EPSG:32633"})
    part = cube.select_bands(np.arange(1, 10))  # a regular step: a numpy view
    assert np.shares_memory(part.data, data)
    assert part.band_names == S2_NAMES[1:10] and part.default_bands == (2, 1, 0)
    assert part.units == "reflectance" and part.georef == {"crs": "EPSG:32633"}
    sel = cube.select_bands([i for i in range(13) if i != 10])  # irregular: a lazy subset
    assert isinstance(sel.data, BandSubset) and sel.bands == 12 and "B10" not in sel.band_names
    np.testing.assert_array_equal(np.asarray(sel.data), data[[i for i in range(13) if i != 10]])
    block = sel.as_float32(slice(1, 3), slice(0, 2))
    np.testing.assert_array_equal(block, data[np.r_[0:10, 11:13], 1:3, 0:2])
    np.testing.assert_array_equal(sel.data[11], data[12])
    assert sel.metadata["band_selection"].tolist() == [i for i in range(13) if i != 10]
    again = sel.select_bands([10, 11])  # composed: indices into the file's bands
    assert again.metadata["band_selection"].tolist() == [11, 12] and again.band_names == ["B11", "B12"]
    np.testing.assert_array_equal(sel.valid_mask(), np.ones((6, 5), bool))
    assert sel.rgb().shape == (6, 5, 3)


def test_select_bands_on_memmap_stays_on_disk(tmp_path):
    data = np.arange(6 * 4 * 3, dtype=np.int16).reshape(6, 4, 3)
    cube = read_cube(write_cube(tmp_path / "m.hdr", Cube(data)))
    sel = cube.select_bands([0, 2, 3])
    assert isinstance(sel.data, BandSubset) and isinstance(sel.data.base, np.memmap)
    np.testing.assert_array_equal(sel.data[:, 1:3, :], data[[0, 2, 3], 1:3, :])


@pytest.mark.parametrize("bad", [[], [0, 13], [-1], [1.5]])
def test_select_bands_rejects_bad_indices(bad):
    with pytest.raises(HsiAnomalyError):
        Cube(np.zeros((13, 2, 2))).select_bands(bad)


def test_value_labels():
    ints = np.zeros((2, 2, 2), dtype=np.uint16)
    assert Cube(ints, scale_factor=10000.0).value_label() == "reflectance (scale 10000 applied)"
    assert Cube(ints, scale_factor=10000.0).value_label(scaled=False) == "reflectance x 10000"
    assert Cube(ints, units="uW/cm^2/sr/nm").value_label() == "radiance (uW/cm^2/sr/nm)"
    assert Cube(ints).value_label() == "DN"
    assert Cube(ints.astype(np.float32)).value_label() == "value"
    assert Cube(ints, units="Reflectance").value_label() == "reflectance"


def test_jasper_ridge_header_units(shared_data):
    cube = read_cube(shared_data / "envi" / "jasperRidge2_R198.hdr")
    assert cube.value_label() == "reflectance (scale 10000 applied)"
    assert default_band_selection(cube) is None  # its bbl marks every band good


def test_a_sentinel2_date_saved_alone_is_recognised_as_in_its_stack(tmp_path):
    """13 bands without names in a .npy: taken as Sentinel-2 L1C with a note, as a 4-D stack is, so the
    default band choice (B09, B10 left out) does not depend on how the date was saved."""
    from napari_hsi_anomaly.core.bands import S2_NOTE
    from napari_hsi_anomaly.core.stack import read_stack

    rng = np.random.default_rng(0)
    stack = rng.random((3, 21, 20, 13)).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "date1.npy", stack[1])
    alone = read_cube(tmp_path / "date1.npy")
    in_stack = read_stack(tmp_path / "stack.npy").cube(1)
    assert alone.band_names == in_stack.band_names == S2_NAMES
    assert S2_NOTE in alone.metadata["notes"]
    assert default_band_selection(alone).tolist() == default_band_selection(in_stack).tolist() == [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
    np.save(tmp_path / "twelve.npy", stack[1, :, :, :12])  # another band count: left as it is
    assert read_cube(tmp_path / "twelve.npy").band_names is None
