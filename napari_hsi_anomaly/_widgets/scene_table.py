"""The scene table: one row per scored scene (a layer or a date of a stack), selecting a row shows it.

Columns: the share flagged at the current t_anom, and the median score (the typical pixel's score). The
median tells a hazy date from a clear one where the maximum cannot: a few outlying pixels reach the top
of the score range on every date, while haze lifts the whole scene (Sentinel-2 stack, normal from the
clear dates 3-4: median 0.74 / 0.70 on the hazy dates 0 / 1, 0.10-0.23 on the clear ones; maximum
0.82-0.88 on all five). The median is read from a strided sample of at most ``MEDIAN_SAMPLE`` values and
kept per score map, so moving t_anom only recounts the flagged share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("scene", "flagged %", "median score")
TIPS = ("", "share of the scene's pixels at or above t_anom",
        "the typical pixel's score: haze or cloud lifts the whole scene, a few outliers do not")
MEDIAN_SAMPLE = 1_000_000


def median_score(score_map: np.ndarray) -> float:
    """Median of the finite scores (a strided sample of at most ``MEDIAN_SAMPLE`` values)."""
    m = np.asarray(score_map).ravel()
    step = max(1, m.size // MEDIAN_SAMPLE)
    v = m[::step]
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


class SceneTable(QTableWidget):
    """Name or date, flagged fraction at the current t_anom, median score; hidden for a single scene."""

    scene_selected = Signal(int)
    shown = Signal(bool)  # rows for more than one scene (the dock shows its scenes tab)

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            if tip:
                self.horizontalHeaderItem(col).setToolTip(tip)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            self.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.itemSelectionChanged.connect(self._on_selection)
        self._quiet = False
        self._medians: dict[int, tuple[np.ndarray, float]] = {}  # id(score map) -> (map, median)

    def clear_scenes(self) -> None:
        self._quiet = True
        self.setRowCount(0)
        self._quiet = False
        self.shown.emit(False)

    def set_scenes(self, scenes: list, t_anom: float) -> None:
        """One row per scene (``SceneResult``); shown when there is more than one."""
        self._quiet = True
        self.setRowCount(len(scenes))
        for i, s in enumerate(scenes):
            self.setItem(i, 0, QTableWidgetItem(s.name))
        self._quiet = False
        self.update_rows(scenes, t_anom)
        rows = min(len(scenes), 6)  # up to 6 rows without scrolling
        row_h = self.verticalHeader().defaultSectionSize()
        self.setFixedHeight(self.horizontalHeader().height() + rows * row_h + 4)
        self.shown.emit(len(scenes) > 1)

    def _median(self, m: np.ndarray) -> float:
        hit = self._medians.get(id(m))
        if hit is None or hit[0] is not m:  # a re-scored or marked map is a new array
            hit = (m, median_score(m))
            self._medians[id(m)] = hit
        return hit[1]

    def update_rows(self, scenes: list, t_anom: float) -> None:
        """Flagged % at ``t_anom`` (one pass over each map) and the median score of every scene."""
        t = np.float32(t_anom)
        live = {id(s.detection.score_map) for s in scenes}
        self._medians = {k: v for k, v in self._medians.items() if k in live}
        for i, s in enumerate(scenes):
            m = s.detection.score_map
            flagged = 100.0 * float(np.count_nonzero(np.asarray(m) >= t)) / max(1, np.asarray(m).size)
            for col, text in ((1, f"{flagged:.1f}"), (2, f"{self._median(m):.2f}")):
                item = self.item(i, col)
                if item is None:
                    self.setItem(i, col, QTableWidgetItem(text))
                else:
                    item.setText(text)

    def values(self) -> list[tuple[str, float, float]]:
        """(scene, flagged %, median score) per row, as shown."""
        return [(self.item(i, 0).text(), float(self.item(i, 1).text()), float(self.item(i, 2).text()))
                for i in range(self.rowCount())]

    def select(self, index: int) -> None:
        """Select row ``index`` without emitting ``scene_selected``."""
        if not 0 <= index < self.rowCount() or self.currentRow() == index:
            return
        self._quiet = True
        self.selectRow(index)
        self._quiet = False

    def _on_selection(self, *_: Any) -> None:
        if self._quiet:
            return
        rows = {i.row() for i in self.selectedIndexes()}
        if len(rows) == 1:
            self.scene_selected.emit(rows.pop())
