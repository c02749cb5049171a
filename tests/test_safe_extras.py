"""Sentinel-2 extras: the L2A scene classification (SCL) as a mask and a layer, leaving clouds out of the
fit, the spacecraft's wavelengths from the metadata, and .SAFE folders found inside folders."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from test_safe import _write_band, make_safe

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core.io import read_cube
from napari_hsi_anomaly.core.io.safe import exclude_scl, find_products, scl_mask


@pytest.fixture(scope="module")
def l2a(tmp_path_factory):
    safe = make_safe(tmp_path_factory.mktemp("x") / "nested" / "deeper", "L2A", spacecraft="S2C")
    scl20 = next(safe.rglob("*_SCL_20m.jp2"))
    with rasterio.open(scl20) as ds:
        shape = (ds.height, ds.width)
    classes = np.full(shape, 4, np.uint16)  # vegetation
    classes[: shape[0] // 2, : shape[1] // 2] = 9  # cloud, high probability
    for f in safe.rglob("*_SCL_*m.jp2"):
        f.unlink()
    _write_band(scl20, classes, 20)
    mtd = next(safe.glob("MTD_MSIL2A.xml"))
    mtd.write_text(mtd.read_text().replace("</root>", (
        "<SPACECRAFT_NAME>Sentinel-2C</SPACECRAFT_NAME>"
        '<Spectral_Information bandId="1" physicalBand="B2"><Wavelength><MIN unit="nm">457</MIN>'
        '<MAX unit="nm">524</MAX><CENTRAL unit="nm">489.1</CENTRAL></Wavelength></Spectral_Information>'
        "</root>")))
    return safe


def test_scl_mask_and_fit_exclusion(l2a):
    cube = read_cube(l2a, resolution=20)
    scl = cube.metadata["scl"]
    assert scl.shape == (cube.rows, cube.cols) and set(np.unique(scl)) == {4, 9}
    mask = scl_mask(cube)
    assert mask.sum() == (scl == 9).sum() > 0
    fit_cube = exclude_scl(cube)
    assert not fit_cube.valid_mask()[mask].any()
    assert fit_cube.valid_mask()[~mask].all() == cube.valid_mask()[~mask].all()
    assert cube.fill is None  # the original keeps every pixel for scoring


def test_spacecraft_and_wavelengths_from_metadata(l2a):
    cube = read_cube(l2a)
    assert cube.metadata["safe"]["spacecraft"] == "S2C"
    assert cube.wavelengths[cube.band_names.index("B02")] == pytest.approx(489.1)


def test_find_products_inside_folders(l2a):
    assert find_products(l2a.parents[1]) == [l2a]
    assert find_products(l2a) == []  # a product's own folders are not searched


def test_reader_adds_scene_classification_layer(l2a):
    from napari_hsi_anomaly._reader import read_layers

    layers = read_layers(str(l2a))
    scl = [layer for layer in layers if layer[1]["name"] == "scene classification"]
    assert len(scl) == 1 and scl[0][2] == "labels"
    assert scl[0][1].get("scale") == layers[0][1]["scale"][1:]


def test_batch_expands_safe_folders_inside_folders(l2a):
    from napari_hsi_anomaly.core.batch import expand_inputs

    items = expand_inputs([str(l2a.parents[1])])
    assert [i.path for i in items] == [str(l2a)]


def test_fit_leaves_classified_clouds_out_when_asked(l2a, tmp_path, capsys):
    """CLI ``fit --exclude-scl``: the clouds are counted and left out; a cube without a scene
    classification is one line, nothing written."""
    clouds = int(scl_mask(read_cube(l2a, resolution=20)).sum())
    out = tmp_path / "normal"
    assert main(["fit", str(l2a), "--resolution", "20", "--method", "rx", "--exclude-scl",
                 "--out", str(out)]) == 0
    assert f"{clouds:,} classified cloud/shadow/water pixels left out" in capsys.readouterr().err
    assert (out / "profile.json").exists()
    plain = tmp_path / "plain.npy"
    np.save(plain, np.random.default_rng(0).normal(1, 0.1, (20, 20, 4)).astype(np.float32))
    assert main(["fit", str(plain), "--method", "rx", "--exclude-scl", "--out", str(tmp_path / "n2")]) == 1
    err = [x for x in capsys.readouterr().err.strip().splitlines() if not x.startswith("note:")]
    assert len(err) == 1 and "no scene classification" in err[0]
    assert not (tmp_path / "n2").exists()
