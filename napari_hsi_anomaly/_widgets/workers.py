"""Worker plumbing shared by the docks: run a core ``iter_*`` generator off the GUI thread.

The stardist-napari idiom: the computation is a generator yielding ``core.progress.Progress``;
``start_generator_worker`` wraps it in ``napari.qt.threading.thread_worker(start_thread=False)``,
connects every callback *before* starting, drives a ``napari.utils.progress`` bar from the yields
(in the GUI thread), and turns errors into a napari notification instead of a traceback.
Cancel with ``worker.quit()``: the generator stops at its next yield; ``returned`` is then not
emitted, ``aborted`` and ``finished`` are.

``HSI_ANOMALY_SYNC_WORKERS=1`` runs the same worker synchronously in the calling thread (same
signals, same callbacks, in the same order), for scripts and tests that want no threads.

``Generation`` drops stale results when a newer request supersedes an older one (e.g. a slider):

    gen = Generation()                      # one per widget / per kind of request
    token = gen.next()                      # before starting the request
    start_generator_worker(fn, ..., on_returned=gen.guard(token, self._show))
    # or: def _show(result): if not gen.is_current(token): return ...
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from superqt.utils import GeneratorWorker as _SuperqtGeneratorWorker

from napari_hsi_anomaly.core.errors import CancelledError, HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

SYNC_ENV = "HSI_ANOMALY_SYNC_WORKERS"
log = logging.getLogger(__name__)

Callback = Callable[..., Any] | None


class HsiGeneratorWorker(_SuperqtGeneratorWorker):
    """A generator worker that relays warnings to napari but leaves errors to our handler.

    (napari's own ``GeneratorWorker`` relays every error as a traceback notification; we show the
    plain ``HsiAnomalyError`` message instead.)
    """

    pbar: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pbar = None
        self.warned.connect(_relay_warning)


def _relay_warning(show_warn_args: tuple) -> None:
    from napari.utils.notifications import notification_manager

    notification_manager.receive_warning(*show_warn_args)


def sync_workers() -> bool:
    """True when ``HSI_ANOMALY_SYNC_WORKERS`` asks for synchronous workers."""
    return os.environ.get(SYNC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def error_message(exc: BaseException) -> str:
    """The text shown to the user for ``exc``: plain for our errors, short and generic otherwise."""
    if isinstance(exc, HsiAnomalyError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def notify_error(exc: BaseException) -> None:
    """Show ``exc`` as a napari notification (info for a cancellation), never raise."""
    from napari.utils import notifications

    if isinstance(exc, CancelledError):
        notifications.show_info(str(exc) or "Cancelled.")
        return
    if not isinstance(exc, HsiAnomalyError):
        log.error("worker failed", exc_info=(type(exc), exc, exc.__traceback__))
    notifications.show_error(error_message(exc))


def notify_saved(what: str, path: Any) -> None:
    """Every save confirms with its path (one info notification)."""
    from napari.utils import notifications

    notifications.show_info(f"Saved {what} to {path}")


def connect_alive(widget: Any, signal: Any, slot: Any) -> None:
    """``signal.connect(slot)`` until ``widget`` (a QObject) is destroyed (a per-viewer model outlives
    the docks: no call into a deleted widget)."""
    signal.connect(slot)

    def _drop(*_: Any) -> None:
        with contextlib.suppress(Exception):  # already gone
            signal.disconnect(slot)

    widget.destroyed.connect(_drop)


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a GUI callback: an exception becomes one notification, never a crash
    (and is logged with its traceback unless it is a user's ``HsiAnomalyError``); returns None then."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        notify_error(exc)
        return None


class Generation:
    """A counter that tells whether a result still belongs to the newest request."""

    def __init__(self) -> None:
        self._n = 0

    @property
    def current(self) -> int:
        return self._n

    def next(self) -> int:
        """Start a new request: earlier tokens become stale. Returns the new token."""
        self._n += 1
        return self._n

    def is_current(self, token: int) -> bool:
        return token == self._n

    def guard(self, token: int, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` that does nothing once ``token`` is stale."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.is_current(token):
                return fn(*args, **kwargs)
            return None

        return guarded


class _InOrder:
    """Run callbacks one at a time, in arrival order, even when one of them re-enters the event loop.

    napari's progress-bar widget calls ``QApplication.processEvents()``; without this a later
    ``yielded`` or ``returned`` would run *inside* an earlier ``yielded`` callback, out of order.
    A callback that raises is reported (``notify_error``) and the others still run.
    """

    def __init__(self) -> None:
        self._queue: deque = deque()
        self._running = False

    def __call__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.append((fn, args))
        if self._running:
            return
        self._running = True
        try:
            while self._queue:
                f, a = self._queue.popleft()
                try:
                    f(*a)
                except RuntimeError as exc:
                    if "has been deleted" not in str(exc):  # a dock closed while its worker ran
                        notify_error(exc)
                except Exception as exc:  # a bug in a callback must not kill the viewer
                    notify_error(exc)
        finally:
            self._running = False


def _update_pbar(pbar: Any, p: Any) -> None:
    if pbar is None or not isinstance(p, Progress):
        return
    if p.total and pbar.total != p.total:
        pbar.total = int(p.total)
    step = int(p.done) - int(pbar.n)
    if step:
        pbar.update(step)
    if p.message:
        pbar.set_description(p.message)


def start_generator_worker(
    gen_fn: Callable[..., Any],
    *args: Any,
    on_progress: Callback = None,
    on_returned: Callback = None,
    on_error: Callback = None,
    on_finished: Callback = None,
    on_aborted: Callback = None,
    progress_total: int | None = None,
    desc: str | None = None,
    notify: bool = True,
    progress_bar: bool = True,
    **kwargs: Any,
) -> HsiGeneratorWorker:
    """Run ``gen_fn(*args, **kwargs)`` (a generator function) in a worker thread; return the worker.

    Callbacks run in the GUI thread: ``on_progress(Progress)`` per yield, ``on_returned(result)``
    when the generator returns (not after a cancel), ``on_error(exc)`` after the error was shown as
    a notification (``notify=False`` to skip that), ``on_aborted()`` after ``worker.quit()`` took
    effect, ``on_finished()`` always, last. A progress bar (``desc``, ``progress_total`` or the
    yielded ``Progress.total``) lives in napari's activity dock while the worker runs; a dock with a
    progress bar of its own passes ``progress_bar=False`` (napari's bar costs the GUI thread about
    0.4 s to create and re-enters the event loop).
    """
    from napari.qt.threading import thread_worker
    from napari.utils import progress

    worker: HsiGeneratorWorker = thread_worker(
        gen_fn, start_thread=False, worker_class=HsiGeneratorWorker, ignore_errors=True
    )(*args, **kwargs)

    pbar = None
    if progress_bar:
        pbar = progress(total=progress_total or 0, desc=desc or getattr(gen_fn, "__name__", "working"))
    worker.pbar = pbar

    in_order = _InOrder()

    def _yielded(value: Any) -> None:
        if on_progress is not None:
            on_progress(value)
        _update_pbar(pbar, value)  # last: napari's bar widget re-enters the event loop

    def _errored(exc: BaseException) -> None:
        if notify:
            notify_error(exc)
        if on_error is not None:
            on_error(exc)

    def _finished() -> None:
        if pbar is not None:
            pbar.close()
        if on_finished is not None:
            on_finished()

    worker.yielded.connect(lambda v: in_order(_yielded, v))
    worker.errored.connect(lambda e: in_order(_errored, e))
    if on_returned is not None:
        worker.returned.connect(lambda r: in_order(on_returned, r))
    if on_aborted is not None:
        worker.aborted.connect(lambda: in_order(on_aborted))
    worker.finished.connect(lambda: in_order(_finished))

    if sync_workers():
        worker.run()  # same signals, emitted in this thread, delivered directly
    else:
        worker.start()
    return worker


def start_function_worker(
    fn: Callable[..., Any],
    *args: Any,
    on_returned: Callback = None,
    on_error: Callback = None,
    on_finished: Callback = None,
    desc: str | None = None,
    notify: bool = True,
    progress_bar: bool = True,
    **kwargs: Any,
) -> HsiGeneratorWorker:
    """Run a plain function ``fn(*args, **kwargs)`` off the GUI thread (indeterminate progress bar)."""

    def _gen() -> Any:
        result = fn(*args, **kwargs)
        yield Progress(1, 1, desc or "")
        return result

    _gen.__name__ = getattr(fn, "__name__", "working")
    return start_generator_worker(
        _gen,
        on_returned=on_returned,
        on_error=on_error,
        on_finished=on_finished,
        desc=desc,
        notify=notify,
        progress_bar=progress_bar,
    )
