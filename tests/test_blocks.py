"""Row-block scoring of large scenes: the same map as scoring the whole cube against the same model."""

import numpy as np
import pytest

from napari_hsi_anomaly.core.cube import Cube
from napari_hsi_anomaly.core.progress import Progress, run
from napari_hsi_anomaly.core.scoring.blocks import (
    halo_rows,
    iter_detect_blocks,
    iter_score_blocks,
    reference_strips,
)


@pytest.fixture(scope="module")
def scene() -> Cube:
    from napari_hsi_anomaly.core.scene import make_scene

    return make_scene(72, 40, seed=3).cube


def test_reference_strips_cover_the_scene_evenly(scene):
    assert reference_strips(scene, pixels=10**9) == [scene]
    strips = reference_strips(scene, pixels=1200, n_strips=3, min_rows=12)
    assert len(strips) == 2 and all(s.rows == 12 and s.cols == 40 for s in strips)
    assert np.shares_memory(strips[0].data, scene.data)


@pytest.mark.parametrize(("method", "halo"), [("spectral-rx", 20), ("spectral-spatial", 400),
                                             ("attribute", 400)])
def test_blocks_equal_whole_cube_scored_against_the_same_model(scene, tmp_path, method, halo):
    from napari_hsi_anomaly.core.detectors.registry import get_detector

    refs = reference_strips(scene, pixels=1600, n_strips=2, min_rows=20)
    params = {} if method == "attribute" else {"min_samples": 5}
    scorer = get_detector(method)(**params).fit(refs)
    assert halo_rows(scorer) == halo  # local RX: half its largest outer window (15/41 fits 20-row strips)
    target = Cube(np.array(scene.data), wavelengths=scene.wavelengths)  # not a reference object
    whole = scorer.score(target).score_map
    path = tmp_path / "cube.npy"
    np.save(path, np.asarray(scene.data))
    mapped = Cube(np.load(path, mmap_mode="r"), wavelengths=scene.wavelengths)
    gen = iter_score_blocks(scorer, mapped, block_pixels=17 * 40)  # 5 blocks, each with a halo
    steps = []
    try:
        while True:
            steps.append(next(gen))
    except StopIteration as stop:
        blocked = stop.value
    assert [p.done for p in steps if isinstance(p, Progress) and "rows" in p.message][-1] == 72
    assert blocked.dtype == np.float32 and blocked.shape == (72, 40)
    np.testing.assert_allclose(blocked, whole, atol=1e-6)


def test_detect_blocks_small_scene_is_the_classic_detection(scene):
    from napari_hsi_anomaly.core.scoring import detect

    out = run(iter_detect_blocks(scene, min_samples=5))
    np.testing.assert_array_equal(out, detect(scene, min_samples=5).score_map)


def test_a_predicted_block_is_freed_without_a_gc_pass():
    """A GLOSH prediction and its result hold no reference cycle: dropping them frees the per-pixel
    arrays at once (a cycle kept every block's arrays of a 10980^2 tile until a GC pass: +2.5 GB)."""
    import gc
    import weakref

    from napari_hsi_anomaly.core.scoring.glosh import GloshScorer

    rng = np.random.default_rng(0)
    scorer = GloshScorer(rng.normal(size=(400, 3)), min_samples=5)
    pred = scorer.predictor(rng.normal(size=(300, 3)))
    result = pred.score(40)
    assert result.labels.shape == (300,)
    alive = weakref.ref(pred)
    gc.disable()
    try:
        del pred, result
        assert alive() is None
    finally:
        gc.enable()


def test_each_part_reads_only_its_own_halo(scene, monkeypatch):
    """A row block's GLOSH part scores the block's own rows; the spatial part reads its halo too; the
    rows' map is the whole cube's."""
    from napari_hsi_anomaly.core.detectors.registry import get_detector

    scorer = get_detector("spectral-rx")(min_samples=5).fit([scene])
    target = Cube(np.array(scene.data), wavelengths=scene.wavelengths)  # not the reference object
    seen: dict[str, list[int]] = {}
    for part in scorer.parts():
        raw_for = part.raw_for

        def spy(cube, _raw_for=raw_for, _name=part.detector):
            seen.setdefault(_name, []).append(cube.rows)
            return (yield from _raw_for(cube))
        monkeypatch.setattr(part, "raw_for", spy)
    whole = scorer.score(target).score_map
    seen.clear()
    lo, hi = 30, 41
    det = run(scorer.iter_score(target, rows=(lo, hi)))
    halo = scorer.parts()[1].halo()
    assert seen == {"glosh-spectral": [hi - lo], "rx-local": [min(scene.rows, hi + halo) - max(0, lo - halo)]}
    assert det.score_map.shape == (hi - lo, scene.cols)
    np.testing.assert_allclose(det.score_map, whole[lo:hi], atol=5e-5)


def test_blocks_are_at_least_four_halos_tall_where_memory_allows(monkeypatch):
    from types import SimpleNamespace

    from napari_hsi_anomaly.core.pipeline import halo_block_pixels

    tile = SimpleNamespace(rows=10980, cols=10980, bands=12)
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "16G")
    assert halo_block_pixels(2_000_000, tile, 400) == 1600 * 10980  # was 182 rows read with 800 more
    assert halo_block_pixels(2_000_000, tile, 20) == 2_000_000  # a small halo: the block as planned
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "3G")  # 3 GiB / 240 B a pixel: 13.4 M pixels at once
    assert halo_block_pixels(2_000_000, tile, 400) == 3 * 2**30 // 240 - 800 * 10980  # what fits
    monkeypatch.setenv("HSI_ANOMALY_MEMORY_BUDGET", "200M")
    assert halo_block_pixels(2_000_000, tile, 400) == 2_000_000  # never smaller than planned


def test_a_spatial_composition_is_scored_whole_and_cropped(scene, monkeypatch):
    """A combination whose own composition is spatial (a ``halo()`` of its own) scores every part on the
    whole block and keeps the rows asked for, a new p_min included."""
    from napari_hsi_anomaly.core.detectors.combined import CombinedScorer
    from napari_hsi_anomaly.core.detectors.registry import get_detector

    scorer = get_detector("spectral-spatial")(min_samples=5).fit([scene])
    monkeypatch.setattr(CombinedScorer, "halo", lambda self: 7)
    target = Cube(np.array(scene.data), wavelengths=scene.wavelengths)
    seen = []
    part = scorer.parts()[0]
    raw_for = part.raw_for

    def spy(cube):
        seen.append(cube.rows)
        return (yield from raw_for(cube))
    monkeypatch.setattr(part, "raw_for", spy)
    whole = scorer.score(target)
    det = run(scorer.iter_score(target, rows=(20, 30)))
    assert seen == [scene.rows, scene.rows]
    np.testing.assert_array_equal(det.score_map, whole.score_map[20:30])
    np.testing.assert_array_equal(det.rescore(7), whole.rescore(7)[20:30])
