"""The scene table: one row per scored scene (a layer or a date of a stack), selecting a row shows it."""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

COLUMNS = ("scene", "flagged %", "max score")


class SceneTable(QTableWidget):
    """Name or date, flagged fraction at the current t_anom, max score; hidden for a single scene."""

    scene_selected = Signal(int)
    shown = Signal(bool)  # rows for more than one scene (the dock shows its scenes tab)

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            self.horizontalHeader().setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.itemSelectionChanged.connect(self._on_selection)
        self._quiet = False

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

    def update_rows(self, scenes: list, t_anom: float) -> None:
        """Flagged % at ``t_anom`` and the max score of every scene (one pass over each map)."""
        t = np.float32(t_anom)
        for i, s in enumerate(scenes):
            m = np.asarray(s.detection.score_map)
            flagged = 100.0 * float(np.count_nonzero(m >= t)) / max(1, m.size)
            peak = float(np.nanmax(m)) if m.size else float("nan")
            for col, text in ((1, f"{flagged:.1f}"), (2, f"{peak:.2f}")):
                item = self.item(i, col)
                if item is None:
                    self.setItem(i, col, QTableWidgetItem(text))
                else:
                    item.setText(text)

    def values(self) -> list[tuple[str, float, float]]:
        """(scene, flagged %, max score) per row, as shown."""
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
