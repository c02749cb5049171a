"""Progress reports yielded by the core's long computations (training, features, scoring).

Every slow function exists as a generator ``iter_*`` that yields ``Progress`` and returns its result,
so a napari worker can show a progress bar and cancel between steps; ``run`` drives one to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    """One step of a long computation: ``done`` of ``total`` units, a short message, extra values."""

    done: int
    total: int
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def run(
    gen: Generator[Progress, None, T], on_progress: Callable[[Progress], None] | None = None
) -> T:
    """Drive a progress generator to the end and return its result."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(p)
