"""The scene table tells a hazy date from a clear one: on the real Sentinel-2 stack, with the normal
profile fitted on the clear dates 3 and 4, the hazy dates 0 and 1 have a far higher median score."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def s2_scenes(shared_data):
    from napari_hsi_anomaly.core.bands import default_band_selection
    from napari_hsi_anomaly.core.profile import iter_fit_profile, iter_score_profile
    from napari_hsi_anomaly.core.progress import run
    from napari_hsi_anomaly.core.stack import read_stack

    stack = read_stack(shared_data / "sentinel2" / "sentinel2-eolearn-ref.npz")
    refs = [stack.cube(k) for k in (3, 4)]
    scorer = run(iter_fit_profile(refs, None, band_selection=default_band_selection(refs[0])))
    return [SimpleNamespace(name=f"date {k}", detection=run(iter_score_profile(scorer, stack.cube(k))))
            for k in range(stack.n_dates)]


def test_median_score_tells_hazy_dates_from_clear_ones(s2_scenes, qtbot):
    from napari_hsi_anomaly._widgets.scene_table import COLUMNS, SceneTable

    table = SceneTable()
    qtbot.addWidget(table)
    table.set_scenes(s2_scenes, 0.7)
    assert COLUMNS[2] == "median score"
    rows = table.values()
    medians = [r[2] for r in rows]
    hazy, clear = medians[:2], medians[2:]
    # measured (default detector): 0.74 / 0.70 hazy, 0.10-0.23 clear; floors leave room for calibration
    assert min(hazy) > 0.5 and max(clear) < 0.4 and min(hazy) - max(clear) > 0.25, medians
    flagged = [r[1] for r in rows]
    assert min(flagged[:2]) > 3 * max(flagged[2:]), flagged
    table.update_rows(s2_scenes, 0.3)  # t_anom moves: the share follows, the median stays
    assert [r[2] for r in table.values()] == medians
    assert table.values()[2][1] > flagged[2]


def test_median_score_reads_a_sample_of_a_large_map():
    from napari_hsi_anomaly._widgets.scene_table import MEDIAN_SAMPLE, median_score

    m = np.linspace(0, 1, 3 * MEDIAN_SAMPLE + 7, dtype=np.float32)
    m[::5] = np.nan
    assert median_score(m) == pytest.approx(0.5, abs=1e-3)
    assert np.isnan(median_score(np.full(4, np.nan, np.float32)))
