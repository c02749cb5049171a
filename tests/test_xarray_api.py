"""xarray in, xarray out: coordinates, attributes and (with rioxarray) the CRS kept."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from napari_hsi_anomaly.core.errors import ShapeError  # noqa: E402
from napari_hsi_anomaly.core.xarray_api import dataarray_to_cube, detect_xarray  # noqa: E402


def _da():
    rng = np.random.default_rng(0)
    data = rng.normal(1000, 30, (5, 32, 36)).astype(np.float32)
    data[:, 10:12, 20:22] += 900
    y = 5000000.0 - 20.0 * (np.arange(32) + 0.5)
    x = 600000.0 + 20.0 * (np.arange(36) + 0.5)
    return xr.DataArray(data, dims=("band", "y", "x"),
                        coords={"band": ["B02", "B03", "B04", "B08", "B11"], "y": y, "x": x},
                        attrs={"source": "test"})


def test_scores_keep_coords_and_attrs():
    da = _da()
    out = detect_xarray(da, "rx")
    assert out.dims == ("y", "x") and out.dtype == np.float32
    np.testing.assert_array_equal(out.coords["x"], da.coords["x"])
    np.testing.assert_array_equal(out.coords["y"], da.coords["y"])
    assert out.attrs["source"] == "test" and out.attrs["method"] == "rx"
    assert float(out.isel(y=11, x=21)) > float(out.median())  # the planted spot stands out


def test_band_names_and_band_dim_errors():
    da = _da()
    assert dataarray_to_cube(da).band_names == ["B02", "B03", "B04", "B08", "B11"]
    with pytest.raises(ShapeError, match="band dimension"):
        dataarray_to_cube(da.rename(band="layer"))
    assert dataarray_to_cube(da.rename(band="layer"), band_dim="layer").bands == 5


def test_crs_kept_with_rioxarray():
    import rioxarray  # noqa: F401  (the testing extra installs it)
    da = _da().rio.write_crs("EPSG:32633")
    out = detect_xarray(da, "rx")
    assert out.rio.crs.to_epsg() == 32633
    assert tuple(out.rio.transform())[:6] == tuple(da.rio.transform())[:6]
