"""CAE + GLOSH per pixel: the pixel space (leading components + reconstruction error) is fitted on the
reference, kept in the scorer's state, and a target is projected with the reference's basis."""

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.detectors.glosh_cae import CaeGloshScorer
from napari_hsi_anomaly.core.model import TrainOptions, reconstruct, train
from napari_hsi_anomaly.core.model import features as feat
from napari_hsi_anomaly.core.model.features import PixelSpace


def _cube(seed: int, shift: float = 0.0, rows: int = 28, cols: int = 30) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.05, (8, rows, cols)).astype(np.float32) + shift
    data[:, 5:7, 9:11] += 1.5  # a small target
    return Cube(data)


@pytest.fixture(scope="module")
def model():
    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=2, batch_size=2,
                        val_fraction=0.0, threads=1, seed=0)
    return train([_cube(0)], "fast", opts)


def test_pixel_space_is_whitened_on_the_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 12)) @ rng.normal(size=(12, 12)) + 3.0
    x[:50] = np.nan  # no-data rows are left out of the fit and stay NaN
    err = rng.gamma(2.0, 1.0, size=(6, 4000)) * np.arange(1, 7)[:, None]  # bands on different scales
    space = PixelSpace.fit([x[:2000], x[2000:]], [err[:, :2000], err[:, 2000:]], components=5)
    assert space.basis.shape == (12, 5) and space.dim == 6 and space.uses_reconstruction
    y = space.transform(x, err)
    assert np.isnan(y[:50]).all() and np.isfinite(y[50:]).all()
    np.testing.assert_allclose(y[50:, :5].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(y[50:, :5].std(axis=0, ddof=1), 1.0, rtol=1e-6)
    assert abs(np.median(y[50:, 5])) < 0.1  # the error coordinate: a robust z on the reference
    assert np.all(np.diff(np.sort(space.band_median)) > 0)  # each band normalised by its own median
    again = PixelSpace.from_state(*space.state())
    np.testing.assert_array_equal(again.transform(x, err), y)
    with pytest.raises(Exception, match="reconstruction"):
        space.transform(x)
    assert PixelSpace.fit([x[50:]], None, components=64).dim == 12  # at most the feature's values


def test_residual_components_are_whitened_on_the_reference():
    """The residual's leading components are centred and whitened on the reference; a target is
    projected with the reference's basis; a space saved before them loads without them."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 10))
    res = (rng.normal(size=(3000, 6)) @ rng.normal(size=(6, 6)) + 0.2).T  # (bands, pixels), correlated
    err = res**2
    res[:, :40] = np.nan  # no data
    space = PixelSpace.fit([x], [err], components=3, residuals=[res], residual_components=4)
    assert space.uses_residual and space.residual_dim == 4 and space.dim == 3 + 4 + 1
    y = space.transform(x, err, res)
    assert np.isnan(y[:40]).all() and np.isfinite(y[40:]).all()  # a no-data row is NaN, whole
    # the residual is projected in float32 (the spectral detectors' projection): 1e-5, not 1e-9
    np.testing.assert_allclose(y[40:, 3:7].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y[40:, 3:7].std(axis=0, ddof=1), 1.0, rtol=1e-5)
    d = res[:, 40:].T - res[:, 40:].T.mean(axis=0)  # the leading direction is the covariance's top one
    top = np.linalg.eigh(np.cov(d.T))[1][:, -1]
    assert abs(abs(space.res_basis[:, 0] @ top) - 1.0) < 1e-6
    shifted = res.copy()  # a residual 6 reference spreads along the top direction
    shifted[:, 100] = space.res_mean + 6.0 * space.res_std[0] * space.res_basis[:, 0]
    np.testing.assert_allclose(space.transform(x, err, shifted)[100, 3:7], [6.0, 0, 0, 0], atol=1e-4)
    with pytest.raises(Exception, match="residual"):
        space.transform(x, err)
    again = PixelSpace.from_state(*space.state())
    np.testing.assert_array_equal(again.transform(x, err, res), y)
    arrays, meta = space.state()
    old = PixelSpace.from_state({k: v for k, v in arrays.items() if not k.startswith("res_")}, meta)
    assert not old.uses_residual and old.dim == 4
    np.testing.assert_array_equal(old.transform(x, err)[40:], y[40:, [0, 1, 2, 7]])


def test_glosh_fits_the_space_on_the_reference_and_keeps_it(model):
    ref, target = _cube(0), _cube(3, shift=0.03)
    scorer = get_detector("glosh")(p_min=20, min_samples=5).fit([ref], model=model)
    space = scorer.space
    k = min(feat.PIXEL_COMPONENTS, model.config.kernels[0] * min(feat.PIXEL_GROUPS, model.config.used_bands))
    assert space.basis.shape[1] == k and space.uses_reconstruction == feat.PIXEL_RECON
    assert space.residual_dim == min(feat.PIXEL_RESIDUAL, model.config.used_bands)
    assert scorer.ref.scorer.dims == space.dim and not scorer.ref.scorer.scale
    before = scorer.score(target)
    assert before.score_map.dtype == np.float32 and 0 <= before.score_map.min() <= before.score_map.max() <= 1
    assert before.score_map[5:7, 9:11].min() > np.median(before.score_map)
    # the target is projected with the reference's basis: scoring it leaves the space unchanged
    np.testing.assert_array_equal(scorer.space.basis, space.basis)
    arrays, meta = scorer.state()
    assert {"pixel_space.mean", "pixel_space.basis", "pixel_space.std"} <= set(arrays)
    assert "pixel_space" in meta
    loaded = CaeGloshScorer.from_state(arrays, meta, model=model)
    np.testing.assert_array_equal(loaded.space.basis, space.basis)
    after = loaded.score(target)
    np.testing.assert_allclose(before.score_map, after.score_map, atol=1e-6)
    np.testing.assert_array_equal(before.rescore(30), after.rescore(30))


def test_profiles_without_a_space_still_load(model):
    """A profile saved before the pixel space (raw pixel feature, min-max scaled GLOSH) scores as then."""
    ref = _cube(0)
    scorer = get_detector("glosh")(p_min=20, min_samples=5).fit([ref], model=model)
    arrays, meta = scorer.state()
    arrays = {k: v for k, v in arrays.items() if not k.startswith("pixel_space.")}
    meta = {k: v for k, v in meta.items() if k != "pixel_space"}
    assert CaeGloshScorer.from_state(arrays, meta, model=model).space is None


def test_recon_old_profiles_normalise_each_band_by_the_reference(model):
    """Profiles saved with ``band_median`` (before the residual statistics) keep their scores."""
    from napari_hsi_anomaly.core.detectors.recon import ReconScorer, normalised_error

    per_band = np.stack([np.full((3, 4), 1.0), np.full((3, 4), 100.0)]).astype(np.float32)
    per_band[1, 0, 0] = 300.0  # three times the usual error in the noisy band
    np.testing.assert_allclose(normalised_error(per_band, np.array([1.0, 100.0]))[0, :2], [2.0, 1.0])
    np.testing.assert_allclose(normalised_error(per_band, None), per_band.mean(axis=0))
    target = _cube(4, shift=0.03)
    rec = reconstruct(model, target)
    old = ReconScorer(model, {"preset": "fast"}, target.bands, None, np.ones(model.config.used_bands))
    assert not old.whitened
    raw = old.raw_of(rec).fixed
    np.testing.assert_allclose(raw, rec.per_band[: model.config.used_bands].mean(axis=0), rtol=1e-5)


def test_recon_is_the_mahalanobis_distance_of_the_residual(model):
    """recon's distance = sqrt((r - mu)^T (C + ridge * tr(C)/b I)^-1 (r - mu)) with the reference's
    residual mean and covariance (re-estimated TRIM_STEPS times on the TRIM_KEEP share nearest the
    mean), checked against a direct numpy formula; the state reproduces the scores."""
    from napari_hsi_anomaly.core.detectors.recon import (
        RIDGE,
        TRIM_KEEP,
        TRIM_STEPS,
        ReconScorer,
        residual_distance,
        spatial_map,
    )

    ref, target = _cube(0), _cube(4, shift=0.03)
    scorer = get_detector("recon")().fit([ref], model=model)
    assert scorer.whitened and scorer.band_median is None
    nb = model.config.used_bands
    r_ref = reconstruct(model, ref, residual=True).residual[:nb].reshape(nb, -1).T.astype(np.float64)
    def stats(x):
        m, c = x.mean(axis=0), np.cov(x.T)
        return m, c + RIDGE * np.trace(c) / nb * np.eye(nb)

    mu, cov = stats(r_ref)
    for _ in range(TRIM_STEPS):
        dist = np.sqrt(np.einsum("ij,jk,ik->i", r_ref - mu, np.linalg.inv(cov), r_ref - mu))
        mu, cov = stats(r_ref[dist <= np.quantile(dist, TRIM_KEEP)])
    rec_t = reconstruct(model, target, residual=True)
    np.testing.assert_allclose(rec_t.residual[:nb] ** 2, rec_t.per_band[:nb], rtol=1e-5, atol=1e-12)
    d = rec_t.residual[:nb].reshape(nb, -1).T - mu
    expected = np.sqrt(np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)).reshape(target.rows, target.cols)
    dist = residual_distance(rec_t.residual[:nb], scorer.res_mean, scorer.res_whiten)
    np.testing.assert_allclose(dist, expected, rtol=1e-4)
    # the raw map adds the distance's contrast and peaks (test_cae_spatial.py)
    np.testing.assert_array_equal(scorer.raw_of(rec_t).fixed, spatial_map(dist, scorer.spatial))
    before = scorer.score(target)
    assert before.extras["recon_per_band"].shape[0] == target.bands
    loaded = ReconScorer.from_state(*scorer.state(), model=model)
    np.testing.assert_array_equal(loaded.res_whiten, scorer.res_whiten)
    np.testing.assert_array_equal(loaded.score(target).score_map, before.score_map)


def test_residual_parameter_sets_the_space(model):
    """``residual`` (default: the measured PIXEL_RESIDUAL) picks how many residual components GLOSH
    clusters; 0 gives the encoder components and the error only; the CLI offers it."""
    from napari_hsi_anomaly.core.detectors.glosh_cae import RESIDUAL

    assert RESIDUAL.default == feat.PIXEL_RESIDUAL
    ref = _cube(0)
    none = get_detector("glosh")(p_min=20, min_samples=5, residual=0).fit([ref], model=model)
    two = get_detector("glosh")(p_min=20, min_samples=5, residual=2).fit([ref], model=model)
    assert not none.space.uses_residual and none.ref.scorer.dims == none.space.dim
    assert two.space.residual_dim == 2 and two.space.dim == none.space.dim + 2
    assert two.ref.scorer.dims == two.space.dim
    with pytest.raises(Exception, match="residual"):
        get_detector("glosh")(residual=-1)
