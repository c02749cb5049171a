"""Scoring many scenes on ``dask.distributed``: one task per input, a summary table, resumable.

``iter_batch(items, out_dir, ...)`` yields ``Progress`` and returns the summary rows. Each task reads
its cube, scores it (against a saved profile, or with a detector fitted on the cube itself), and
writes ``<stem>.scores.npy`` (and ``<stem>.mask.npy``) under a temporary name, then renames them, so a
file with the final name is always complete. A re-run skips inputs whose outputs exist; one bad
input becomes one row with its error. ``summary.csv`` is rewritten (atomically) after every task.
Runs on a ``LocalCluster`` by default or on an existing scheduler (``tcp://host:port``); input and
profile paths must then be readable by the workers.
"""

from __future__ import annotations

import csv
import gc
import glob
import json
import os
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress

SUMMARY = "summary.csv"
SETTINGS = "batch.json"
COLUMNS = ("input", "rows", "cols", "bands", "flagged_fraction", "max_score", "seconds", "error")
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BatchItem:
    """One scene: a cube file, or date ``date`` of a 4-D stack; ``stem`` names its outputs."""

    path: str
    stem: str
    date: int | None = None

    @property
    def label(self) -> str:
        return self.path if self.date is None else f"{self.path} (date {self.date})"


def _cube_files(folder: Path) -> list[Path]:
    from napari_hsi_anomaly.core.io import CUBE_SUFFIXES

    suffixes = {s.lower() for s in CUBE_SUFFIXES}
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    headers = {p.with_suffix("") for p in files if p.suffix.lower() == ".hdr"}
    out = []
    for p in files:
        s = p.suffix.lower()
        if s == ".hdr" or (s in (".npy", ".npz", ".tif", ".tiff", ".zip") and not p.name.endswith(
                (".scores.npy", ".mask.npy"))):
            out.append(p)
        elif s in suffixes and p.with_suffix("") in headers:
            continue  # an ENVI data file: its .hdr is listed
    return out


def expand_inputs(inputs: Sequence[str], *, date: int | None = None) -> list[BatchItem]:
    """Files, folders (their cube files) and glob patterns -> items; a 4-D stack gives one item per date
    (or only ``date``). A name that matches nothing stays an item (its row will say why)."""
    from napari_hsi_anomaly.core.stack import is_stack_file, read_stack

    paths: list[Path] = []
    for text in inputs:
        p = Path(text).expanduser()
        if p.is_dir() and not p.name.upper().endswith(".SAFE"):
            from napari_hsi_anomaly.core.io.safe import find_products

            paths.extend(_cube_files(p) + find_products(p))  # .SAFE folders inside it too
        elif not p.exists() and glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text)))
            paths.extend(m for m in matches if m.is_file() or m.name.upper().endswith(".SAFE"))
            if not matches:
                paths.append(p)
        else:
            paths.append(p)
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for p in dict.fromkeys(paths):  # unique, in order
        dates: list[int | None] = [date]
        if date is None and is_stack_file(p):
            try:
                dates = list(range(read_stack(p).n_dates))
            except HsiAnomalyError:
                dates = [None]
        for d in dates:
            stem = p.stem if p.suffix.lower() != ".hdr" else p.with_suffix("").name
            if d is not None:
                stem = f"{stem}_date{d}"
            n = seen.get(stem, 0)
            seen[stem] = n + 1
            items.append(BatchItem(str(p), stem if n == 0 else f"{stem}-{n + 1}", d))
    return items


def outputs(out_dir: Path, item: BatchItem, mask: bool = True) -> list[Path]:
    names = [f"{item.stem}.scores.npy"] + ([f"{item.stem}.mask.npy"] if mask else [])
    return [out_dir / n for n in names]


# -- the task (runs on a worker) -------------------------------------------------------------------
_SCORERS: dict[tuple, Any] = {}  # per worker thread: (profile, mtime, thread) -> Scorer
_LOCK = threading.Lock()


def _profile_scorer(profile: str) -> Any:
    from napari_hsi_anomaly.core.profile import PROFILE_JSON, load_profile

    key = (profile, os.stat(Path(profile) / PROFILE_JSON).st_mtime_ns, threading.get_ident())
    with _LOCK:
        scorer = _SCORERS.get(key)
    if scorer is None:
        scorer = load_profile(profile)
        with _LOCK:
            _SCORERS[key] = scorer
    return scorer


def _peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    except (ImportError, OSError):  # pragma: no cover - not Linux
        return float("nan")


def _save_npy(path: Path, array: np.ndarray) -> None:
    """``array`` to ``path`` through a temporary name in the same folder, then an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _limit_threads() -> None:
    """In a worker with ``OMP_NUM_THREADS`` set (dask's single-threaded workers: 1), numba's kernels use
    that many threads too (numba reads its own variable, and otherwise takes every core)."""
    limit = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not (limit.isdigit() and int(limit) > 0):
        return
    try:
        import numba

        numba.set_num_threads(min(int(limit), numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass


def score_item(item: BatchItem, out_dir: str, settings: dict) -> dict:
    """Score one input and write its outputs; always returns a summary row (``error`` on failure)."""
    _limit_threads()
    row: dict[str, Any] = {"input": item.label, "rows": "", "cols": "", "bands": "",
                           "flagged_fraction": "", "max_score": "", "seconds": "", "error": ""}
    t0 = time.perf_counter()
    try:
        from napari_hsi_anomaly.core.io import read_cube
        from napari_hsi_anomaly.core.progress import run

        cube = read_cube(item.path, date=item.date, layout=settings.get("layout"),
                         key=settings.get("key") or "cube")
        row.update(rows=cube.rows, cols=cube.cols, bands=cube.bands)
        if settings.get("profile"):
            from napari_hsi_anomaly.core.profile import iter_score_profile

            det = run(iter_score_profile(_profile_scorer(settings["profile"]), cube))
        else:
            from napari_hsi_anomaly.core.bands import bands_for
            from napari_hsi_anomaly.core.scoring.detect import iter_detect

            sel = bands_for(cube, settings.get("bands"))  # as `score`: ranges, "all", or the default
            cube = cube if sel is None else cube.select_bands(sel)
            det = run(iter_detect(cube, settings["method"], **settings.get("params", {})))
        t_anom = float(settings.get("t_anom", 0.7))
        scores = np.asarray(det.score_map, dtype=np.float32)
        mask = det.mask(t_anom).astype(np.uint8)
        scores_path, mask_path = outputs(Path(out_dir), item)
        _save_npy(mask_path, mask)
        _save_npy(scores_path, scores)  # last: a scores file with its final name marks the input done
        row.update(flagged_fraction=round(float(mask.mean()), 6), max_score=round(float(scores.max()), 6))
    except HsiAnomalyError as exc:
        row["error"] = " ".join(str(exc).split())
    except MemoryError:
        row["error"] = "out of memory on the worker"
    except Exception as exc:  # noqa: BLE001 - one bad input is one row, never a stopped batch
        row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    row["seconds"] = round(time.perf_counter() - t0, 3)
    gc.collect()  # a worker scores scene after scene: nothing of this one may wait for a GC pass
    row["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    row["worker_pid"] = os.getpid()
    return row


# -- driver ----------------------------------------------------------------------------------------
def check_settings(out_dir: Path, settings: dict) -> None:
    """``out_dir`` holds results of these settings, or none yet (``batch.json`` records them)."""
    path = out_dir / SETTINGS
    keep = {k: settings.get(k) for k in ("profile", "method", "params", "t_anom", "layout", "key", "bands")}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            old.setdefault("bands", None)  # written before --bands existed
        if old is not None and old != json.loads(json.dumps(keep)):
            raise HsiAnomalyError(
                f"{out_dir} holds results of another batch ({path.name}: {json.dumps(old)}); re-running "
                "would mix them: use a new --out folder, or delete that one."
            )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(keep, indent=1))
    os.replace(tmp, path)


def read_summary(out_dir: Path) -> dict[str, dict]:
    path = out_dir / SUMMARY
    if not path.is_file():
        return {}
    try:
        with open(path, newline="") as f:
            return {r["input"]: r for r in csv.DictReader(f) if r.get("input")}
    except (OSError, csv.Error, UnicodeDecodeError, KeyError):
        return {}


def write_summary(out_dir: Path, rows: Sequence[dict]) -> Path:
    path = out_dir / SUMMARY
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in COLUMNS})
    os.replace(tmp, path)
    return path


def _done_row(out_dir: Path, item: BatchItem, old: dict | None, t_anom: float) -> dict:
    """The row of an input whose outputs exist (from the old summary, or from the files)."""
    if old and not old.get("error"):
        return {**{k: old.get(k, "") for k in COLUMNS}, "skipped": True}
    scores_path, mask_path = outputs(out_dir, item)
    s = np.load(scores_path, mmap_mode="r")
    m = np.load(mask_path, mmap_mode="r")
    return {"input": item.label, "rows": s.shape[0], "cols": s.shape[1], "bands": "",
            "flagged_fraction": round(float(np.mean(m)), 6), "max_score": round(float(np.max(s)), 6),
            "seconds": "", "error": "", "skipped": True}


def _probe_scheduler(addr: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Ask ``addr`` who it is; ``OSError``/``TimeoutError`` if nothing answers, ``ValueError`` if what
    answers is not a dask scheduler."""
    import asyncio

    from distributed.comm import connect as comm_connect

    async def ask() -> object:
        comm = await comm_connect(addr, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    reply = asyncio.run(asyncio.wait_for(ask(), 2 * timeout))
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise ValueError("not a dask scheduler")


def connect(scheduler: str | None = None, workers: int | None = None, *, processes: bool = True,
            memory_limit: str | None = "auto") -> tuple[Any, Any]:
    """``(client, cluster)``: a client of ``scheduler`` (``tcp://host:port``) or of a new
    ``LocalCluster`` (``workers`` single-threaded workers); ``HsiAnomalyError`` within seconds when the
    scheduler does not answer."""
    from distributed import Client, LocalCluster

    if scheduler:
        addr = scheduler if "://" in scheduler else f"tcp://{scheduler}"
        try:
            _probe_scheduler(addr)  # fails cleanly (a refused Client lingers and blocks at exit)
            client = Client(addr, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise HsiAnomalyError(
                f"Cannot reach the dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S:g} s "
                f"({type(exc).__name__}); start one with `dask scheduler` (and `dask worker ADDRESS` on "
                "each machine) or leave out --scheduler to use a local cluster."
            ) from None
        except (Exception, MemoryError) as exc:  # something answered, but not as a dask scheduler
            raise HsiAnomalyError(
                f"Cannot reach the dask scheduler at {scheduler}: what answers there is not a dask "
                f"scheduler ({type(exc).__name__}); check the address and port (default 8786)."
            ) from None
        return client, None
    n = int(workers) if workers else max(1, min(4, os.cpu_count() or 1))
    if n < 1:
        raise HsiAnomalyError(f"--workers must be at least 1; got {workers}.")
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                           dashboard_address=None, memory_limit=memory_limit, silence_logs=40)
    return Client(cluster, set_as_default=False), cluster


def iter_batch(items: Sequence[BatchItem], out_dir: str | os.PathLike, *, profile: str | None = None,
               method: str | None = None, params: dict | None = None, t_anom: float = 0.7,
               scheduler: str | None = None, workers: int | None = None, client: Any = None,
               processes: bool = True, layout: str | None = None, key: str | None = None,
               bands: str | None = None) -> Generator[Progress, None, list[dict]]:
    """Score ``items`` into ``out_dir`` on dask (see module docstring); returns the summary rows in
    input order (skipped inputs: ``skipped=True``)."""
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if profile:
        profile = str(Path(profile).expanduser().resolve())
    settings = {"profile": profile, "method": None if profile else (method or DEFAULT_METHOD),
                "params": dict(params or {}), "t_anom": float(t_anom), "layout": layout, "key": key,
                "bands": bands}
    check_settings(out, settings)
    old = read_summary(out)
    rows: list[dict | None] = [None] * len(items)
    todo = []
    for i, item in enumerate(items):
        if all(p.is_file() for p in outputs(out, item)):
            rows[i] = _done_row(out, item, old.get(item.label), t_anom)
        else:
            todo.append(i)
    total = len(items)
    done = total - len(todo)
    yield Progress(done, total, f"{done} already done, {len(todo)} to score")
    if todo:
        own = client is None
        cluster = None
        if own:
            client, cluster = connect(scheduler, workers, processes=processes)
        try:
            from distributed import as_completed

            futures = {client.submit(score_item, items[i], str(out), settings, pure=False,
                                     key=f"hsi-score-{i}-{items[i].stem}-{time.time_ns()}"): i
                       for i in todo}
            for fut in as_completed(list(futures), loop=client.loop):
                i = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - a lost worker: that input's row says so
                    row = {"input": items[i].label, "error": f"worker failed: {type(exc).__name__}: {exc}"}
                rows[i] = row
                done += 1
                write_summary(out, [r for r in rows if r is not None])
                status = "error" if row.get("error") else f"max {row.get('max_score')}"
                yield Progress(done, total, f"{items[i].stem}: {status}", {"row": row})
        finally:
            if own:
                client.close()
                if cluster is not None:
                    cluster.close()
    final = [r for r in rows if r is not None]
    write_summary(out, final)
    return final
