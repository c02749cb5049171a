"""The Inspect dock's table of flagged regions: numeric sorting, selection by region, CSV export."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_hsi_anomaly.core.regions import RegionInfo

MAX_TABLE_ROWS = 500
COLUMNS = ("#", "area px", "mean", "max", "row", "col")
REGION_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class _NumItem(QTableWidgetItem):
    """A table item that shows formatted text but sorts by its number."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if mine is None or theirs is None:
            return super().__lt__(other)
        return float(mine) < float(theirs)


def num_item(value: float, fmt: str) -> QTableWidgetItem:
    """A table item that sorts numerically and shows ``value`` formatted."""
    item = _NumItem(format(value, fmt))
    item.setData(SORT_ROLE, float(value))
    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    return item


class RegionTable(QWidget):
    """A one-line status, the table (rows carry their region's index) and "Export CSV…"."""

    def __init__(self, on_selected: Callable[[int], None], on_export: Callable[[], None]) -> None:
        super().__init__()
        self.label = QLabel("Flagged regions: score first.")
        self.label.setWordWrap(True)
        self.csv_btn = QPushButton("Export CSV…")
        self.csv_btn.setToolTip("Every flagged region (not only the rows shown) to a CSV file.")
        self.csv_btn.clicked.connect(on_export)
        self.csv_btn.setEnabled(False)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.label, 1)
        head.addWidget(self.csv_btn)
        self.table = QTableWidget(0, len(COLUMNS))
        t = self.table
        t.setHorizontalHeaderLabels(COLUMNS)
        t.verticalHeader().setVisible(False)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        t.verticalHeader().setDefaultSectionSize(20)
        t.setMinimumHeight(100)
        t.setMaximumHeight(170)
        t.setSortingEnabled(True)
        t.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        t.itemSelectionChanged.connect(self._on_selection)
        self._on_selected = on_selected
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(t)

    def clear(self, text: str) -> None:
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setRowCount(0)
        self.table.setSortingEnabled(True)
        self.label.setText(text)
        self.csv_btn.setEnabled(False)
        self.table.hide()  # no empty table before there are results

    def set_regions(self, regions: Sequence[RegionInfo]) -> None:
        """One row per region (the first ``MAX_TABLE_ROWS``, by max score) and the status line."""
        shown = regions[:MAX_TABLE_ROWS]
        t = self.table
        t.setSortingEnabled(False)
        t.clearContents()
        t.setRowCount(len(shown))
        for i, r in enumerate(shown):
            items = (
                num_item(i + 1, "d"), num_item(r.area, ",d"), num_item(r.mean_score, ".3f"),
                num_item(r.max_score, ".3f"), num_item(r.centroid[0], ".1f"), num_item(r.centroid[1], ".1f"),
            )
            for j, item in enumerate(items):
                item.setData(REGION_ROLE, i)
                t.setItem(i, j, item)
        t.setSortingEnabled(True)
        n = len(regions)
        more = f" (top {len(shown)} by max score)" if n > len(shown) else ""
        self.label.setText(f"Flagged regions: {n:,}{more}. Select one to go there.")
        self.csv_btn.setEnabled(n > 0)
        self.table.setVisible(n > 0)

    def selected_index(self) -> int | None:
        items = self.table.selectedItems()
        return None if not items else int(items[0].data(REGION_ROLE))

    def select_index(self, index: int) -> None:
        for row in range(self.table.rowCount()):
            if int(self.table.item(row, 0).data(REGION_ROLE)) == index:
                self.table.selectRow(row)
                return
        raise IndexError(f"region {index} is not in the table")

    def _on_selection(self) -> None:
        index = self.selected_index()
        if index is not None:
            self._on_selected(index)

