"""Worker plumbing: real threads, cancel, error notifications, sync switch, stale results."""

from __future__ import annotations

import threading
import time

import pytest

from napari_hsi_anomaly._widgets import workers
from napari_hsi_anomaly.core.errors import CubeReadError
from napari_hsi_anomaly.core.progress import Progress

pytestmark = pytest.mark.gui


def _count(n: int, delay: float = 0.0, fail_at: int | None = None, exc: Exception | None = None):
    for i in range(n):
        if fail_at is not None and i == fail_at:
            raise exc or RuntimeError("boom")
        if delay:
            time.sleep(delay)
        yield Progress(i + 1, n, f"step {i + 1}", {"thread": threading.get_ident()})
    return n * 10


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    from napari.utils import notifications

    monkeypatch.setattr(notifications, "show_error", shown.append)
    monkeypatch.delenv(workers.SYNC_ENV, raising=False)
    return shown


def test_generator_worker_runs_in_thread_and_returns(qtbot, errors):
    seen: list[Progress] = []
    got: list[int] = []
    done: list[bool] = []
    w = workers.start_generator_worker(
        _count,
        5,
        on_progress=seen.append,
        on_returned=got.append,
        on_finished=lambda: done.append(True),
        desc="counting",
    )
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert got == [50]
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert all(p.values["thread"] != threading.get_ident() for p in seen)
    assert w.pbar.n == 5 and w.pbar.total == 5
    assert errors == []


def test_quit_stops_at_next_yield_without_result(qtbot, errors):
    seen: list[Progress] = []
    got: list[int] = []
    aborted: list[bool] = []
    w = workers.start_generator_worker(
        _count,
        1000,
        0.01,
        on_progress=seen.append,
        on_returned=got.append,
        on_aborted=lambda: aborted.append(True),
    )
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=5000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(w.finished, timeout=5000):
        w.quit()
    assert time.perf_counter() - t0 < 1.0
    assert got == [] and aborted == [True]
    assert len(seen) < 1000


def test_hsi_error_shows_plain_message(qtbot, errors):
    got_exc: list[Exception] = []
    workers.start_generator_worker(
        _count,
        3,
        fail_at=1,
        exc=CubeReadError("x.hdr: truncated data file."),
        on_error=got_exc.append,
    )
    qtbot.waitUntil(lambda: bool(got_exc), timeout=5000)
    assert errors == ["x.hdr: truncated data file."]
    assert isinstance(got_exc[0], CubeReadError)


def test_other_error_is_short_and_generic(qtbot, errors):
    done: list[bool] = []
    workers.start_generator_worker(
        _count, 3, fail_at=0, exc=ValueError("bad value"), on_finished=lambda: done.append(True)
    )
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert errors == ["Unexpected error (ValueError): bad value"]


def test_sync_switch_runs_in_calling_thread(qtbot, errors, monkeypatch):
    monkeypatch.setenv(workers.SYNC_ENV, "1")
    seen: list[Progress] = []
    got: list[int] = []
    workers.start_generator_worker(_count, 3, on_progress=seen.append, on_returned=got.append)
    assert got == [30]  # already done when the call returns
    assert all(p.values["thread"] == threading.get_ident() for p in seen)


def test_function_worker(qtbot, errors):
    got: list[int] = []
    workers.start_function_worker(lambda a, b: a + b, 2, 3, on_returned=got.append)
    qtbot.waitUntil(lambda: got == [5], timeout=5000)


def test_generation_drops_stale_results():
    gen = workers.Generation()
    out: list[str] = []
    t1 = gen.next()
    first = gen.guard(t1, out.append)
    t2 = gen.next()
    second = gen.guard(t2, out.append)
    second("new")
    first("old")  # arrives late: dropped
    assert out == ["new"]
    assert gen.is_current(t2) and not gen.is_current(t1)


def test_callbacks_stay_in_order_when_one_reenters_the_event_loop(qtbot, errors):
    from qtpy.QtWidgets import QApplication

    log: list[object] = []

    def on_progress(p: Progress) -> None:
        time.sleep(0.02)  # let the worker queue its next signals
        QApplication.processEvents()  # as napari's progress-bar widget does
        log.append(p.done)

    workers.start_generator_worker(
        _count,
        4,
        on_progress=on_progress,
        on_returned=log.append,
        on_finished=lambda: log.append("finished"),
    )
    qtbot.waitUntil(lambda: "finished" in log, timeout=5000)
    assert log == [1, 2, 3, 4, 40, "finished"]


def test_a_failing_callback_is_reported_not_raised(qtbot, errors):
    done: list[bool] = []

    def bad(_p: Progress) -> None:
        raise KeyError("oops")

    workers.start_generator_worker(_count, 2, on_progress=bad, on_finished=lambda: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert errors and errors[0].startswith("Unexpected error (KeyError)")


def test_no_napari_progress_bar_when_the_dock_has_its_own(qtbot, errors):
    seen: list[Progress] = []
    got: list[int] = []
    w = workers.start_generator_worker(_count, 3, on_progress=seen.append, on_returned=got.append,
                                       progress_bar=False)
    assert w.pbar is None
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == [30] and [p.done for p in seen] == [1, 2, 3]
