"""The CAE detectors' spatial terms: CAE GLOSH per pixel composes GLOSH's peaks and spectral floor
(``calibration.Fusion``), ``recon`` area-closes its residual distance and adds its peaks, so that a
large target the CAE learned stands out at its own size."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.detectors import get_detector, scorer_from_state
from napari_hsi_anomaly.core.detectors.glosh_cae import CaeGloshScorer


def _glosh_map(rng):
    """A stand-in for GLOSH's map of a 100x100 scene: the background low, a 20x20 block (the target)
    moderately high and flat, a 25-row field (normal, 25 % of the scene) a little higher still: GLOSH
    alone ranks the field above the block."""
    g = rng.uniform(0.3, 0.5, (100, 100)).astype(np.float32)
    g[:25] = rng.uniform(0.68, 0.69, (25, 100))
    gt = np.zeros((100, 100), bool)
    gt[50:70, 10:30] = True
    g[gt] = rng.uniform(0.6, 0.65, gt.sum())
    return g, gt


@pytest.fixture(scope="module")
def model():
    from napari_hsi_anomaly.core.model import TrainOptions, train

    opts = TrainOptions(epochs=1, optimizer="adam", crop=16, steps_per_epoch=1, batch_size=2,
                        val_fraction=0.0, threads=1, seed=0)
    return train(Cube(_cube()), "fast", opts)


def _cube():
    return np.random.default_rng(0).normal(1.0, 0.05, (6, 100, 100)).astype(np.float32)


def test_glosh_peaks_rank_a_block_above_a_field_glosh_alone_prefers(model, monkeypatch):
    """The composition, with the CAE's GLOSH scores replaced by a known map: the peaks (a 400 px
    object over its surroundings) put the block first; without them GLOSH's order stays."""
    from napari_hsi_anomaly.core.scoring.glosh.hierarchy import GloshResult
    from napari_hsi_anomaly.core.scoring.glosh.scorer import GloshScorer
    from napari_hsi_anomaly.core.thresholds import false_alarm_rate

    g, gt = _glosh_map(np.random.default_rng(0))
    monkeypatch.setattr(GloshScorer, "score", lambda self, p: GloshResult(g.ravel().copy(),
                                                                            np.zeros(g.size, np.int64), p))
    cube = Cube(_cube())
    scorer = get_detector("glosh")(feature="pixel").fit([cube], model=model)
    assert scorer.calibration.fusion == {"peak_weight": 4.0, "spectral_max": 1.0}
    det = scorer.score(cube)
    with_peaks = roc_auc_score(gt.ravel(), det.score_map.ravel())
    det.rescore(det.params["p_min"] + 50)  # a p_min move keeps the peaks
    assert roc_auc_score(gt.ravel(), det.score_map.ravel()) == pytest.approx(with_peaks)
    det.extras["scorer"] = scorer  # the false-alarm rate reads the same composition (Fusion)
    assert 0.0 <= false_alarm_rate(det, 0.7) < 0.05
    monkeypatch.setattr(CaeGloshScorer, "fusion", lambda self: None)
    alone = get_detector("glosh")(feature="pixel").fit([cube], model=model).score(cube)
    without = roc_auc_score(gt.ravel(), alone.score_map.ravel())
    assert with_peaks > 0.99 and without < 0.8, (with_peaks, without)


def test_glosh_with_peaks_scores_in_row_blocks(model):
    """The peaks make the composition spatial: a row block is scored whole (with its halo) and cropped,
    so scoring in blocks runs and gives the whole cube's map where the halo covers the cube."""
    from napari_hsi_anomaly.core.progress import run
    from napari_hsi_anomaly.core.scoring.blocks import iter_score_blocks

    cube = Cube(_cube()[:, :40])
    scorer = get_detector("glosh")(feature="pixel").fit([cube], model=model)
    assert scorer.halo() == 400
    whole = scorer.score(Cube(_cube()[:, :40])).score_map  # a copy: scored as a new target, as blocks are
    blocks = run(iter_score_blocks(scorer, cube, block_pixels=10 * 100))
    np.testing.assert_allclose(blocks, whole, atol=1e-6)


def test_recon_closing_lifts_a_learned_block_and_round_trips(model):
    """A block the CAE reconstructs has an ordinary distance inside and a high rim: the area closing
    raises its interior to the rim, the peaks rank it; the plain distance does not."""
    from napari_hsi_anomaly.core.detectors.recon import spatial_map, spatial_stats

    rng = np.random.default_rng(0)
    dist = rng.gamma(4.0, 1.5, (80, 80)).astype(np.float32)
    gt = np.zeros((80, 80), bool)
    gt[30:50, 30:50] = True
    ring = gt.copy()
    ring[32:48, 32:48] = False
    dist[ring] += 15.0  # the block's rim; its interior stays ordinary
    plain = roc_auc_score(gt.ravel(), dist.ravel())
    st = spatial_stats([dist])
    spatial = roc_auc_score(gt.ravel(), spatial_map(dist, st).ravel())
    assert plain < 0.8 and spatial > 0.9, (plain, spatial)
    dist[0, 0] = np.nan  # no data stays no data
    assert np.isnan(spatial_map(dist, st)[0, 0])

    data = _cube()[:, :40]
    scorer = get_detector("recon")().fit([Cube(data)], model=model)
    assert scorer.spatial and scorer.halo() == 400
    arrays, meta = scorer.state()
    again = scorer_from_state(arrays, meta, model=model)
    np.testing.assert_allclose(again.score(Cube(data)).score_map, scorer.score(Cube(data)).score_map,
                               atol=1e-5)
    old = {**meta}
    old.pop("spatial")  # a profile saved before the spatial terms: the plain distance
    assert scorer_from_state(arrays, old, model=model).halo() == 0
