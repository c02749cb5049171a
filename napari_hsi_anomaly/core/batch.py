"""Scoring many scenes on ``dask.distributed``: results written by the client, resumed by identity.

``iter_batch(items, out_dir, ...)`` yields ``Progress`` and returns the summary rows.

- Inputs (``expand_inputs``) are absolute paths resolved on the client; nothing inside ``out_dir`` is
  ever an input. Output names keep the input's whole file name (``scene.npy.scores.npy`` and
  ``scene.npz.scores.npy`` never meet; equal names from different folders get a hash of the path).
- A task reads its input on a worker and scores it through ``core.pipeline`` (the same plan, whole or
  row blocks, as ``score``); it returns the maps, and the client writes them (``core.io.write_map``,
  georeferenced like the input; ``npy``, ``tif`` or ``cog``) through a temporary name, reads back what
  it wrote and only then records it. An output that cannot be written or read back is an error row.
- An input too large for one task (``core.pipeline.plan``) is read on the client and its row blocks
  become dask tasks over every worker (progress per block).
- ``manifest.json`` ties every output to its input's full path, size and modification time and to the
  settings, with each file's size and SHA-256; a re-run skips an input only when all of these still
  hold, so a damaged, foreign or stale output is scored again, never trusted.
- Futures are released as they complete: a worker lost later costs only what it was running.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import glob
import hashlib
import json
import os
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_hsi_anomaly.core.atomic import file_sha256 as _file_sha256
from napari_hsi_anomaly.core.errors import HsiAnomalyError
from napari_hsi_anomaly.core.progress import Progress
from napari_hsi_anomaly.core.threads import limit_threads

SUMMARY = "summary.csv"
MANIFEST = "manifest.json"
COLUMNS = ("input", "rows", "cols", "bands", "flagged_fraction", "max_score", "seconds", "scores", "error")
FORMATS = ("npy", "tif", "cog")
LARGE_FILE_BYTES = 64 * 2**20  # inputs above this are planned on the client (whole or blocks)
TRACE_ENV = "HSI_ANOMALY_BATCH_TRACE"  # a file every task appends its input to when it starts


@dataclass(frozen=True)
class BatchItem:
    """One scene: a cube file (absolute path), or date ``date`` (0-based) of a 4-D stack; ``stem``
    names its outputs."""

    path: str
    stem: str
    date: int | None = None

    @property
    def label(self) -> str:
        return self.path if self.date is None else f"{self.path} (date {self.date + 1})"


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder)
        return True
    except (ValueError, OSError):
        return False


def _cube_files(folder: Path) -> list[Path]:
    from napari_hsi_anomaly.core.io import CUBE_SUFFIXES

    suffixes = {s.lower() for s in CUBE_SUFFIXES}
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    headers = {p.with_suffix("") for p in files if p.suffix.lower() == ".hdr"}
    out = []
    for p in files:
        s = p.suffix.lower()
        if s == ".hdr" or (s in (".npy", ".npz", ".tif", ".tiff", ".zip") and ".scores." not in p.name
                           and ".mask." not in p.name):
            out.append(p)
        elif s in suffixes and p.with_suffix("") in headers:
            continue  # an ENVI data file: its .hdr is listed
    return out


def expand_inputs(inputs: Sequence[str], *, date: int | None = None,
                  out_dir: str | os.PathLike | None = None) -> list[BatchItem]:
    """Files, folders (their cube files) and glob patterns -> items with absolute paths; a 4-D stack
    gives one item per date (or only ``date``, 0-based). Anything inside ``out_dir`` is left out. A
    name that matches nothing stays an item (its row will say why)."""
    from napari_hsi_anomaly.core.stack import is_stack_file, read_stack

    out = Path(out_dir).expanduser().resolve() if out_dir is not None else None
    paths: list[Path] = []
    for text in inputs:
        p = Path(os.path.abspath(Path(text).expanduser()))
        if p.is_dir() and not p.name.upper().endswith(".SAFE"):
            from napari_hsi_anomaly.core.io.safe import find_products

            paths.extend(_cube_files(p) + find_products(p))  # .SAFE folders inside it too
        elif not p.exists() and glob.has_magic(text):
            matches = sorted(Path(os.path.abspath(m)) for m in glob.glob(os.path.expanduser(text)))
            paths.extend(m for m in matches if m.is_file() or m.name.upper().endswith(".SAFE"))
            if not matches:
                paths.append(p)
        else:
            paths.append(p)
    paths = [p for p in dict.fromkeys(paths) if not _inside(p, out)]  # unique, in order; never our own
    entries: list[tuple[Path, int | None, str]] = []
    for p in paths:
        dates: list[int | None] = [date]
        if date is None and is_stack_file(p):
            try:
                dates = list(range(read_stack(p).n_dates))
            except HsiAnomalyError:
                dates = [None]
        for d in dates:
            entries.append((p, d, p.name if d is None else f"{p.name}_date{d + 1}"))
    counts: dict[str, int] = {}
    for _, _, name in entries:
        counts[name] = counts.get(name, 0) + 1
    return [BatchItem(str(p), name if counts[name] == 1 else
                      f"{name}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}", d)
            for p, d, name in entries]


def output_names(stem: str, fmt: str) -> dict[str, str]:
    ext = "npy" if fmt == "npy" else "tif"
    return {"scores": f"{stem}.scores.{ext}", "mask": f"{stem}.mask.{ext}"}


# -- the task (runs on a worker) -------------------------------------------------------------------
_SCORERS: dict[tuple, Any] = {}  # per worker: (profile, mtime, thread) -> Scorer
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


def read_item(item: BatchItem, settings: dict) -> Any:
    from napari_hsi_anomaly.core.io import read_cube

    return read_cube(item.path, date=item.date, layout=settings.get("layout"),
                     key=settings.get("key") or "cube")


def item_job(cube: Any, settings: dict, client: Any = None) -> tuple[Any, Any]:
    """``(cube, Job)`` for one input: its band selection applied (without a profile), the normal
    model the settings name (a profile, else the scene itself)."""
    from napari_hsi_anomaly.core.pipeline import Job

    if settings.get("profile"):
        return cube, Job(scorer=_profile_scorer(settings["profile"]), client=client)
    from napari_hsi_anomaly.core.bands import bands_for

    sel = bands_for(cube, settings.get("bands"))  # as `score`: ranges, "all", or the default
    cube = cube if sel is None else cube.select_bands(sel)
    return cube, Job(method=settings["method"], params=dict(settings.get("params", {})), client=client)


def _like(cube: Any) -> dict:
    """What ``write_map(like=...)`` needs of the input, small enough to travel back to the client."""
    meta = {k: cube.metadata[k] for k in ("geotiff", "envi") if k in cube.metadata}
    return {"georef": dict(cube.georef or {}), "metadata": meta}


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, HsiAnomalyError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return "out of memory on the worker"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


def score_item(item: BatchItem, settings: dict) -> dict:
    """Score one input on a worker; returns its row and (without an error) its ``scores``/``mask``."""
    limit_threads()
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a") as f:
            f.write(f"{item.stem}\n")
    row: dict[str, Any] = {"input": item.label, "error": ""}
    result: dict[str, Any] = {"row": row}
    t0 = time.perf_counter()
    try:
        from napari_hsi_anomaly.core.pipeline import iter_score
        from napari_hsi_anomaly.core.progress import run

        cube = read_item(item, settings)
        row.update(rows=cube.rows, cols=cube.cols, bands=cube.bands)
        cube, job = item_job(cube, settings)
        outcome = run(iter_score(job, cube))
        scores = np.asarray(outcome.score_map, dtype=np.float32)
        result.update(scores=scores, mask=outcome.detection.mask(float(settings.get("t_anom", 0.7))),
                      like=_like(cube))
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - one bad input is one row, never a stopped batch
        row["error"] = _error_text(exc)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    gc.collect()  # a worker scores scene after scene: nothing of this one may wait for a GC pass
    row["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    row["worker_pid"] = os.getpid()
    return result


# -- the client: outputs, manifest, summary --------------------------------------------------------
def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def identity(path: str) -> list:
    """``[name, size, mtime_ns]`` of the input and, for an ENVI header, of its data file(s)."""
    p = Path(path)
    files = [p]
    if p.suffix.lower() == ".hdr":
        files += [q for q in (p.with_suffix(s) for s in ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw"))
                  if q.is_file()]
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append([str(f), int(st.st_size), int(st.st_mtime_ns)])
        except OSError:
            out.append([str(f), None, None])
    return out




def _file_entry(path: Path) -> list:
    return [path.name, path.stat().st_size, _file_sha256(path)]


class Manifest:
    """``manifest.json`` in the output folder: the settings and, per output stem, what made it."""

    def __init__(self, out_dir: Path, settings: dict) -> None:
        self.path = out_dir / MANIFEST
        self.out = out_dir
        self.settings = json.loads(json.dumps(settings, default=str))
        self.key = settings_key(self.settings)
        self.outputs: dict[str, dict] = {}
        old = None
        if self.path.is_file():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(self.path.read_text())
        if isinstance(old, dict) and isinstance(old.get("outputs"), dict):
            if old.get("settings") != self.settings:
                raise HsiAnomalyError(
                    f"{out_dir} holds results of another batch ({MANIFEST}: "
                    f"{json.dumps(old.get('settings'))}); re-running would mix them: use a new --out "
                    "folder, or delete that one.")
            self.outputs = old["outputs"]
        self.save()  # the settings are recorded before any output

    def trusted(self, item: BatchItem) -> dict | None:
        """The recorded row of ``item`` when its outputs are whole and made from this very input with
        these settings; None otherwise (score it again)."""
        e = self.outputs.get(item.stem)
        if not isinstance(e, dict) or e.get("input") != item.path or e.get("date") != item.date:
            return None
        if e.get("settings") != self.key or e.get("identity") != identity(item.path):
            return None
        try:
            for name, size, digest in e["files"].values():
                f = self.out / name
                if not f.is_file() or f.stat().st_size != size or _file_sha256(f) != digest:
                    return None
        except (OSError, KeyError, TypeError, ValueError, AttributeError):
            return None
        row = e.get("row")
        return dict(row) if isinstance(row, dict) else None

    def record(self, item: BatchItem, files: dict[str, Path], row: dict) -> None:
        self.outputs[item.stem] = {"input": item.path, "date": item.date, "identity": identity(item.path),
                                   "settings": self.key, "row": {k: row.get(k, "") for k in COLUMNS},
                                   "files": {k: _file_entry(p) for k, p in files.items()}}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"format": "hsi-anomaly-batch", "version": 1, "settings": self.settings,
                                   "outputs": self.outputs}, indent=1))
        os.replace(tmp, self.path)


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


def cog_kwargs() -> dict[str, Any]:
    """How ``write_map`` is asked for a cloud-optimised GeoTIFF; one line where it cannot write one."""
    import inspect

    from napari_hsi_anomaly.core.io import write_map

    accepts = inspect.signature(write_map).parameters
    for name, value in (("cog", True), ("format", "cog"), ("driver", "COG")):
        if name in accepts:
            return {name: value}
    raise HsiAnomalyError("--format cog: this version's core.io.write_map writes no cloud-optimised "
                          "GeoTIFF; use --format tif.")


def _write(path: Path, arr: np.ndarray, like: Any, fmt: str) -> None:
    """``arr`` to ``path`` through a temporary name beside it (``write_map``: georeferenced like the
    input; ``cog`` asks ``write_map`` for a cloud-optimised GeoTIFF)."""
    from napari_hsi_anomaly.core.io import write_map

    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    kwargs = cog_kwargs() if fmt == "cog" else {}
    try:
        write_map(tmp, arr, like=like, **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_back(path: Path) -> tuple[int, ...]:
    if path.suffix == ".npy":
        return tuple(np.load(path, mmap_mode="r").shape)
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return tuple(tif.pages[0].shape[:2])


def store(out: Path, item: BatchItem, result: dict, fmt: str | None, manifest: Manifest) -> dict:
    """Write one result's maps on the client, check them, record them; returns the row (an error row
    when an output cannot be written or read back)."""
    from napari_hsi_anomaly.core.cube import Cube

    row = dict(result["row"])
    if row.get("error"):
        return row
    scores, mask = result["scores"], np.asarray(result["mask"], dtype=np.uint8)
    like = result["like"]
    georef = like["georef"]
    chosen = fmt or ("tif" if georef.get("crs") or georef.get("transform") or like["metadata"].get("geotiff")
                     else "npy")
    shape = scores.shape
    like_cube = Cube(np.broadcast_to(np.float32(0), (1, *shape)), georef=georef, metadata=like["metadata"])
    files = {k: out / n for k, n in output_names(item.stem, chosen).items()}
    try:
        _write(files["mask"], mask, like_cube, chosen)
        _write(files["scores"], scores, like_cube, chosen)
        for f in files.values():
            if _read_back(f) != shape:
                raise HsiAnomalyError(f"{f} does not read back as a {shape[0]}x{shape[1]} map")
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - an output the client cannot see is an error
        row["error"] = f"output not written: {_error_text(exc)}"
        return row
    row.update(flagged_fraction=round(float(mask.mean()), 6), max_score=round(float(scores.max()), 6),
               scores=files["scores"].name)
    manifest.record(item, files, row)
    return row


# -- driver ----------------------------------------------------------------------------------------
def _is_large(item: BatchItem) -> bool:
    try:
        return os.stat(item.path).st_size > LARGE_FILE_BYTES
    except OSError:
        return False


def _needs_blocks(item: BatchItem, settings: dict) -> bool:
    """Whether a large input must be scored in row blocks (``plan`` on the client, reading lazily); an
    input that cannot even be planned is left to its task, whose row then says why."""
    from napari_hsi_anomaly.core.pipeline import plan
    from napari_hsi_anomaly.core.profile import prepare_target

    try:
        cube, job = item_job(read_item(item, settings), settings)
        target = cube if job.scorer is None else prepare_target(job.scorer, cube)
        return bool(plan(target, needs_model=_needs_model(job)).blocked)
    except (Exception, MemoryError):  # noqa: BLE001 - scored as a task, its error is its row
        return False


def _iter_large(item: BatchItem, settings: dict, client: Any) -> Generator[Progress, None, dict]:
    """An input read on the client: scored whole on a worker when ``plan`` allows, else its normal
    model fitted (on strips) and its row blocks spread over every worker."""
    from napari_hsi_anomaly.core.pipeline import iter_score, plan
    from napari_hsi_anomaly.core.profile import prepare_target

    t0 = time.perf_counter()
    row: dict[str, Any] = {"input": item.label, "error": ""}
    result: dict[str, Any] = {"row": row}
    try:
        cube = read_item(item, settings)
        row.update(rows=cube.rows, cols=cube.cols, bands=cube.bands)
        cube, job = item_job(cube, settings, client)
        target = cube if job.scorer is None else prepare_target(job.scorer, cube)
        if not plan(target, needs_model=_needs_model(job)).blocked:
            fut = client.submit(score_item, item, settings, pure=False)
            res = fut.result()
            del fut
            return res
        gen = iter_score(job, cube)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                outcome = stop.value
                break
            yield Progress(p.done, p.total, f"{item.stem}: {p.message}")
        result.update(scores=np.asarray(outcome.score_map, np.float32),
                      mask=outcome.detection.mask(float(settings.get("t_anom", 0.7))), like=_like(cube))
    except (Exception, MemoryError) as exc:  # noqa: BLE001 - one bad input is one row
        row["error"] = _error_text(exc)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _needs_model(job: Any) -> bool:
    from napari_hsi_anomaly.core.detectors import get_detector

    name = job.scorer.detector if job.scorer is not None else job.method
    return bool(get_detector(name).needs_model)


def iter_batch(items: Sequence[BatchItem], out_dir: str | os.PathLike, *, profile: str | None = None,
               method: str | None = None, params: dict | None = None, t_anom: float = 0.7,
               scheduler: str | None = None, scheduler_file: str | None = None, workers: int | None = None,
               client: Any = None, processes: bool = True, layout: str | None = None, key: str | None = None,
               bands: str | None = None, fmt: str | None = None, worker_timeout: float | None = None,
               ) -> Generator[Progress, None, list[dict]]:
    """Score ``items`` into ``out_dir`` on dask (see the module docstring); returns the summary rows in
    input order (skipped inputs: ``skipped=True``). Progress ``values["note"]``: a line for the user."""
    from napari_hsi_anomaly.core.cluster import WORKER_TIMEOUT_S, connect
    from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD

    if fmt is not None and fmt not in FORMATS:
        raise HsiAnomalyError(f"--format must be one of {', '.join(FORMATS)}; got {fmt!r}.")
    if fmt == "cog":
        cog_kwargs()  # refused before any work where write_map cannot
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    if profile:
        profile = str(Path(profile).expanduser().resolve())
    settings = {"profile": profile, "method": None if profile else (method or DEFAULT_METHOD),
                "params": dict(params or {}), "t_anom": float(t_anom), "layout": layout, "key": key,
                "bands": bands, "format": fmt}
    manifest = Manifest(out, settings)
    items = [i for i in items if not _inside(Path(i.path), out)]
    rows: list[dict | None] = [None] * len(items)
    todo = []
    for i, item in enumerate(items):
        old = manifest.trusted(item)
        if old is not None:
            rows[i] = {**old, "skipped": True}
        else:
            todo.append(i)
    total, done = len(items), len(items) - len(todo)
    yield Progress(done, total, f"{done} already done, {len(todo)} to score")
    if todo:
        conn = None
        if client is None:
            conn = connect(scheduler, workers, scheduler_file=scheduler_file, processes=processes,
                           worker_timeout=WORKER_TIMEOUT_S if worker_timeout is None else worker_timeout)
            client = conn.client
            for note in conn.notes:
                yield Progress(done, total, note, {"note": note})
        try:
            for p in _iter_results(items, todo, settings, out, fmt, manifest, client):
                if "item" not in p.values:  # inside a large input
                    yield Progress(done, total, p.message)
                    continue
                i, row = p.values["item"], p.values["row"]
                rows[i] = row
                done += 1
                write_summary(out, [r for r in rows if r is not None])
                status = "error" if row.get("error") else f"max {row.get('max_score')}"
                yield Progress(done, total, f"{items[i].stem}: {status}", {"row": row})
        finally:
            if conn is not None:
                conn.close()
    final = [r for r in rows if r is not None]
    write_summary(out, final)
    return final


def _iter_results(items: Sequence[BatchItem], todo: list[int], settings: dict, out: Path, fmt: str | None,
                  manifest: Manifest, client: Any) -> Generator[Progress, None, None]:
    """Every input scored whole as one task, all at once (released as they complete), then those too
    large for one task block by block; a finished input is a ``Progress`` with ``values`` ``item`` (its
    index) and ``row``."""
    from distributed import as_completed

    large = [i for i in todo if _is_large(items[i]) and _needs_blocks(items[i], settings)]
    small = [i for i in todo if i not in set(large)]
    futures = {client.submit(score_item, items[i], settings, pure=False,
                             key=f"hsi-score-{i}-{time.time_ns()}"): i for i in small}
    ac = as_completed(list(futures), loop=client.loop)
    for fut in ac:
        i = futures.pop(fut)
        try:
            result = fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker: that input's row says so
            result = {"row": {"input": items[i].label, "error": f"worker failed: {_error_text(exc)}"}}
        fut.release()  # nothing finished stays referenced: a later worker loss recomputes none of it
        del fut
        yield Progress(0, 1, "", {"item": i, "row": store(out, items[i], result, fmt, manifest)})
    for i in large:
        result = yield from _iter_large(items[i], settings, client)
        yield Progress(0, 1, "", {"item": i, "row": store(out, items[i], result, fmt, manifest)})
