"""Issue 19/21 leftovers: every map and cube writer goes through ``core.atomic`` (a failed write leaves
the old file whole and no temporary behind), and TIFF score maps written by rasterio/GDAL in any
compression are read through rasterio (header and budget first), by ``read_map`` and ``evaluate``."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from napari_hsi_anomaly.cli.main import main
from napari_hsi_anomaly.core import atomic
from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.errors import HsiAnomalyError, ShapeError
from napari_hsi_anomaly.core.guards import MemoryBudgetError
from napari_hsi_anomaly.core.io import WriteError, write_cube, write_map
from napari_hsi_anomaly.core.io.map_reader import read_map

GEO = {"crs": "EPSG:32633", "transform": (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0)}


def _cube(value: float = 0.0) -> Cube:
    data = np.arange(3 * 6 * 7, dtype=np.float32).reshape(3, 6, 7) + value
    return Cube(data, georef=dict(GEO), band_names=["a", "b", "c"])


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _full_disk(monkeypatch) -> None:
    """``core.atomic``'s fsync fails as on a full disk: only a writer that goes through it notices."""

    def boom(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", boom)


@pytest.mark.parametrize(("name", "fmt"), [("m.npy", None), ("m.tif", "tif"), ("m.tif", "cog"),
                                           ("m.hdr", None)])
def test_write_map_goes_through_atomic(tmp_path, monkeypatch, name, fmt):
    write_map(tmp_path / name, np.zeros((6, 7), np.float32), like=_cube(), fmt=fmt)
    before = _snapshot(tmp_path)
    _full_disk(monkeypatch)
    with pytest.raises(WriteError, match="No space left"):
        write_map(tmp_path / name, np.ones((6, 7), np.float32), like=_cube(), fmt=fmt)
    assert _snapshot(tmp_path) == before  # the old map whole, no temporary left


@pytest.mark.parametrize("name", ["c.npy", "c.tif", "c.hdr"])
def test_write_cube_goes_through_atomic(tmp_path, monkeypatch, name):
    write_cube(tmp_path / name, _cube())
    before = _snapshot(tmp_path)
    _full_disk(monkeypatch)
    with pytest.raises(WriteError, match="No space left"):
        write_cube(tmp_path / name, _cube(5.0))
    assert _snapshot(tmp_path) == before


def test_write_geotiff_is_atomic_itself(tmp_path, monkeypatch):
    from napari_hsi_anomaly.core.io.geotiff import write_geotiff

    target = tmp_path / "g.tif"
    write_geotiff(target, np.zeros((2, 4, 5), np.uint16), GEO)
    before = _snapshot(tmp_path)
    _full_disk(monkeypatch)
    with pytest.raises(OSError):
        write_geotiff(target, np.ones((2, 4, 5), np.uint16), GEO)
    assert _snapshot(tmp_path) == before


def test_napari_writer_keeps_the_old_file_on_a_failed_save(tmp_path, monkeypatch):
    from napari_hsi_anomaly._writer import write_image

    target = tmp_path / "s.tif"
    write_image(str(target), np.zeros((6, 7), np.float32), {"metadata": {"georef": GEO}})
    before = _snapshot(tmp_path)
    _full_disk(monkeypatch)
    with pytest.raises(WriteError):
        write_image(str(target), np.ones((6, 7), np.float32), {"metadata": {"georef": GEO}})
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------------------------------------------
# TIFF maps through rasterio


def _rasterio_map(path, arr, compress, driver="GTiff"):
    import rasterio
    from rasterio.transform import Affine

    opts = {"compress": compress} if compress else {}
    if driver == "GTiff" and arr.shape[0] >= 32:
        opts.update(tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(path, "w", driver=driver, width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype=arr.dtype.name, crs="EPSG:32633", transform=Affine(10, 0, 5e5, 0, -10, 4.2e6),
                       **opts) as ds:
        ds.write(arr, 1)


def _scores_and_gt(rows: int = 40, cols: int = 36) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    gt = np.zeros((rows, cols), np.uint8)
    gt[5:9, 10:14] = 1
    scores = rng.uniform(0, 0.5, (rows, cols)).astype(np.float32)
    scores[gt == 1] = rng.uniform(0.6, 1.0, int(gt.sum()))
    return scores, gt


@pytest.mark.parametrize(("compress", "driver"), [("lzw", "GTiff"), ("zstd", "GTiff"), ("deflate", "COG"),
                                                  ("lzw", "COG")])
def test_read_map_compressed_tiffs_written_by_rasterio(tmp_path, compress, driver):
    scores, gt = _scores_and_gt()
    _rasterio_map(tmp_path / "s.tif", scores, compress, driver)
    _rasterio_map(tmp_path / "gt.tif", gt, compress, driver)
    np.testing.assert_array_equal(read_map(tmp_path / "s.tif", "scores"), scores)
    np.testing.assert_array_equal(read_map(tmp_path / "gt.tif", "gt"), gt)


def test_evaluate_cli_on_lzw_zstd_and_cog_maps(tmp_path, capsys):
    scores, gt = _scores_and_gt()
    _rasterio_map(tmp_path / "gt.tif", gt, "zstd")
    _rasterio_map(tmp_path / "s_lzw.tif", scores, "lzw")
    write_map(tmp_path / "s_cog.tif", scores, fmt="cog")
    npy = tmp_path / "s.npy"
    np.save(npy, scores)
    outs = []
    for s in (npy, tmp_path / "s_lzw.tif", tmp_path / "s_cog.tif"):
        assert main(["evaluate", "--scores", str(s), "--gt", str(tmp_path / "gt.tif")]) == 0
        outs.append(capsys.readouterr().out)
    assert "AUC        1.0000" in outs[0]
    assert outs[0] == outs[1] == outs[2]  # the same numbers whatever the file format


def test_tiff_map_budget_is_checked_from_the_header(tmp_path, monkeypatch):
    scores, _ = _scores_and_gt()
    _rasterio_map(tmp_path / "s.tif", scores, "lzw")
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "1K")
    import rasterio.io

    def no_pixels(*a, **k):  # the refusal comes before any pixel is decoded
        raise AssertionError("pixels read before the budget check")

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", no_pixels)
    with pytest.raises(MemoryBudgetError, match="s.tif"):
        read_map(tmp_path / "s.tif", "scores")


def test_multiband_or_multipage_tiff_is_not_a_map(tmp_path):
    import tifffile

    from napari_hsi_anomaly.core.io.geotiff import write_geotiff

    write_geotiff(tmp_path / "c.tif", np.zeros((3, 8, 9), np.float32), {}, compress="lzw")
    with pytest.raises(ShapeError, match=r"got shape \(3, 8, 9\)"):
        read_map(tmp_path / "c.tif", "scores")
    tifffile.imwrite(tmp_path / "pages.tif", np.zeros((2, 8, 9), np.float32))  # GDAL sees page 1 only
    with pytest.raises(ShapeError, match="one 2-D"):
        read_map(tmp_path / "pages.tif", "scores")


def test_unreadable_tiff_map_is_one_line(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(HsiAnomalyError, match="bad.tif is not a readable TIFF"):
        read_map(bad, "scores")


@pytest.mark.parametrize("name", ["m.npy", "m.hdr"])
def test_uncompressed_map_on_a_full_disk_is_refused_before_writing(tmp_path, monkeypatch, name):
    from napari_hsi_anomaly.core import guards

    monkeypatch.setattr(guards, "free_space", lambda path: 1000)
    with pytest.raises(HsiAnomalyError, match="disk space"):
        write_map(tmp_path / name, np.ones((60, 70), np.float32))
    with pytest.raises(HsiAnomalyError, match="disk space"):
        write_cube(tmp_path / name, _cube())
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_message_says_what_is_free(tmp_path, monkeypatch):
    def short_write(*args, **kwargs):  # NumPy's own words when a write comes up short
        raise OSError("40000 requested and 7136 written")

    monkeypatch.setattr(np.lib.format, "write_array", short_write)
    with pytest.raises(WriteError, match=r"7136 written \(.* free in "):
        write_map(tmp_path / "s.npy", np.ones((100, 100), np.float32))
    assert list(tmp_path.iterdir()) == []
