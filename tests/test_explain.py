"""Why is this flagged: per-part explanations add up to what the detector computed."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_feedback import planted_scene

from napari_hsi_anomaly.core.detectors import get_detector
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.explain import explain


@pytest.fixture(scope="module")
def scene():
    return planted_scene()  # group A bright in band 2 (and 1), group B in band 10 (and 9)


def test_rx_contributions_sum_to_the_squared_distance(scene):
    cube, a, b = scene
    scorer = get_detector("rx")().fit(cube)
    det = scorer.score(cube)
    r, c = np.argwhere(a)[5]
    ex = explain(scorer, cube, (r, c))
    part = ex.parts[0]
    assert part.part == "rx"
    assert part.total == pytest.approx(float(det.extras["rx_distance"][r, c]) ** 2, rel=1e-4)
    assert int(np.argmax(part.bands)) in (1, 2)
    rb = explain(scorer, cube, b).parts[0]  # a region: the mean over its pixels
    assert int(np.argmax(rb.bands)) in (9, 10)


def test_local_rx_contributions_sum_to_the_local_distance(scene):
    cube, a, _ = scene
    scorer = get_detector("rx-local")().fit(cube)
    dist = scorer.score(cube).extras["rx_distance"]
    for r, c in ((12, 12), (40, 50), (0, 3)):
        part = explain(scorer, cube, (r, c)).parts[0]
        assert part.total == pytest.approx(float(dist[r, c]) ** 2, rel=1e-3)


def test_default_detector_parts_point_at_the_planted_bands(scene, tmp_path):
    cube, a, b = scene
    scorer = get_detector("spectral-spatial")(local_weight=0.33).fit(cube)  # every part weighed
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    ex = explain(det, cube, a)
    names = [p.part for p in ex.parts]
    assert names == ["glosh-spectral", "rx-local", "attribute"]
    glosh, _, attr = ex.parts
    assert glosh.bands.sum() == pytest.approx(1.0) and attr.bands.sum() == pytest.approx(1.0)
    assert int(np.argmax(glosh.bands)) in (1, 2)
    assert sum(c["share"] for c in glosh.components) == pytest.approx(1.0)
    top = attr.components[0]
    assert 0 < top["object_px"] <= 36 + 1  # the 6x6 patch is the object
    out = ex.to_csv(tmp_path / "why.csv")
    rows = list(csv.DictReader(out.open()))
    assert {r["part"] for r in rows} == set(names)
    assert sum(1 for r in rows if r["part"] == "rx-local" and r["item"] == "band") == cube.bands


def test_default_detector_explains_only_the_parts_it_weighs(scene):
    """local_weight 0 (the default): local RX is neither fitted nor offered as a reason."""
    cube, a, _ = scene
    scorer = get_detector("spectral-spatial")().fit(cube)
    det = scorer.score(cube)
    det.extras["scorer"] = scorer
    assert [p.part for p in explain(det, cube, a).parts] == ["glosh-spectral", "attribute"]


def test_explain_checks_where(scene):
    cube, a, _ = scene
    scorer = get_detector("rx")().fit(cube)
    with pytest.raises(HsiAnomalyError):
        explain(scorer, cube, (500, 3))
    with pytest.raises(HsiAnomalyError):
        explain(scorer, cube, np.zeros_like(a))
