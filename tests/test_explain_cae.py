"""Why is this flagged, for the CAE parts: the encoder maps and the input bands that drive them, and the
reconstruction residual per band, point at the bands a target was planted in."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_feedback import planted_scene

from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.explain import explain

PLANTED_A, PLANTED_B = {1, 2}, {9, 10}  # band indices of group A's and group B's bump (see planted_scene)


@pytest.fixture(scope="module")
def scene():
    return planted_scene()


@pytest.fixture(scope="module")
def model(scene):
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=4, batch_size=2,
                        val_fraction=0.0, threads=1)
    return train(scene[0], "fast", opts)


def _top(v: np.ndarray, k: int = 3) -> set[int]:
    return {int(i) for i in np.argsort(-np.nan_to_num(np.asarray(v, np.float64)))[:k]}


@pytest.mark.parametrize("name", ["glosh", "recon", "ssim-recon", "iforest-cae"])
def test_cae_parts_point_at_the_planted_bands(name, scene, model, tmp_path):
    cube, a, b = scene
    scorer = get_detector(name)().fit([cube], model=model)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    for mask, planted in ((a, PLANTED_A), (b, PLANTED_B)):
        ex = explain(det, cube, mask)
        assert [p.part for p in ex.parts] == [f"{name}: encoder", f"{name}: residual"]
        enc, res = ex.parts
        assert enc.bands.shape == (cube.bands,) and np.nansum(enc.bands) == pytest.approx(1.0)
        assert _top(enc.bands) & planted, (name, enc.bands)
        assert _top(res.bands) & planted, (name, res.bands)
        maps = [c for c in enc.components if c["kind"] == "map"]
        assert maps and {"name", "share", "z", "group"} <= set(maps[0])
        groups = [c for c in enc.components if c["kind"] == "band group"]
        assert sum(c["share"] for c in groups) == pytest.approx(1.0)
    top_group = explain(det, cube, a).parts[0].note
    assert "443-560 nm" in top_group  # A's bump (bands 2-3) lies in the first band group
    rows = list(csv.DictReader(explain(det, cube, (12, 12)).to_csv(tmp_path / "why.csv").open()))
    assert sum(r["part"] == f"{name}: residual" and r["item"] == "band" for r in rows) == cube.bands
    assert any(r["part"] == f"{name}: encoder" and r["item"] == "component" for r in rows)


def test_recon_residual_terms_sum_to_the_scored_distance(scene, model):
    cube, a, _ = scene
    from napari_hsi_anomaly.core.detectors.recon import residual_distance
    from napari_hsi_anomaly.core.model import reconstruct

    scorer = get_detector("recon")().fit([cube], model=model)
    nb = model.config.used_bands
    # the Mahalanobis distance recon's map is built from (its raw map adds the distance's spatial terms)
    dist = residual_distance(reconstruct(model, cube, residual=True).residual[:nb], scorer.res_mean,
                             scorer.res_whiten)
    for r, c in ((12, 12), (50, 3), (95, 95)):
        res = explain(scorer, cube, (r, c)).parts[1]
        assert res.total == pytest.approx(float(dist[r, c]) ** 2, rel=1e-3)


def test_a_large_region_is_explained_from_its_highest_scoring_pixels(scene, model):
    cube, a, b = scene
    scorer = get_detector("recon")().fit([cube], model=model)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    region = a | b
    region[40:95, 0:60] = True  # a region wider than one patch: one patch a pixel, top pixels only
    enc, res = explain(det, cube, region).parts
    assert np.isfinite(enc.bands).all() and np.isfinite(res.bands).all()


@pytest.mark.gui
def test_why_panel_shows_the_cae_parts_over_the_bands(scene, model, qtbot):
    from napari_hsi_anomaly._widgets.why_panel import WhyPanel

    cube, a, _ = scene
    scorer = get_detector("recon")().fit([cube], model=model)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    panel = WhyPanel()
    qtbot.addWidget(panel)
    panel.explain(det, cube, a, "region 1")
    qtbot.waitUntil(lambda: panel.explanation is not None, timeout=120_000)
    assert set(panel.bars.shares) == {"recon: encoder", "recon: residual"}
    assert _top(panel.bars.shares["recon: residual"]) & PLANTED_A
    text = panel.text.text()
    assert "CAE reconstruction: encoder: band groups" in text and "d\u00b2" in text
