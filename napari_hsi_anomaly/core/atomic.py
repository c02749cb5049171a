"""Writing files and folders so that nothing is lost and nothing foreign is touched.

One helper for every file and folder the project writes:

- ``atomic_file(target)`` / ``write_bytes`` / ``write_text`` / ``save_npy`` / ``save_npz``: the data
  goes to a temporary file beside ``target``, is flushed and ``fsync``-ed, then renamed over it (a
  crash, a full disk or Ctrl-C leaves the old file or none, never a truncated one).
- ``atomic_folder(target, kind)``: a temporary folder beside ``target`` that replaces it whole when the
  block ends (saved models and profiles). It carries an ownership marker (``MARKER``) listing every
  entry the tool wrote.
- Ownership: a folder is replaced only when it is missing, empty, or holds the tool's marker and
  nothing the marker does not list (``check_replaceable``). A file in an output folder is overwritten
  only when it does not exist or the folder's marker lists it (``check_may_write`` / ``claim``).
  Anything else is one ``HsiAnomalyError`` line and nothing is touched.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError

MARKER = ".hsi-anomaly-owned"
TOOL = "napari-hsi-anomaly"
KINDS = ("model", "profile", "synth", "sample", "batch")


class OwnershipError(HsiAnomalyError):
    """A folder or file the tool did not write would be replaced or overwritten."""


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def normal_permissions(d: Path) -> None:
    """``mkdtemp`` makes a 0700 directory: give it (and its files) the usual umask permissions."""
    umask = _umask()
    d.chmod(0o777 & ~umask)
    for f in d.rglob("*"):
        if f.is_symlink():
            continue
        f.chmod((0o777 if f.is_dir() else 0o666) & ~umask)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_tree(d: Path) -> None:
    for f in d.rglob("*"):
        if f.is_file() and not f.is_symlink():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(d)


# ---------------------------------------------------------------------------------------------------
# files


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block ends without error the file is
    ``fsync``-ed and renamed to ``target``. On any error the temporary file is removed and ``target`` is
    left as it was."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """``data`` written atomically to ``target``."""
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """``text`` written atomically to ``target``."""
    return write_bytes(target, text.encode(encoding))


def save_npy(target: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically (no ``.npy`` appended to the name)."""
    with atomic_file(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.asanyarray(array), allow_pickle=False)
    return Path(target)


def save_npz(target: str | os.PathLike, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """``np.savez`` (or ``savez_compressed``) atomically."""
    saver = np.savez_compressed if compressed else np.savez
    with atomic_file(target) as tmp, open(tmp, "wb") as fh:
        saver(fh, **arrays)
    return Path(target)


# ---------------------------------------------------------------------------------------------------
# ownership


def _entries(folder: Path) -> set[str]:
    """Every entry under ``folder`` (files, folders, links; not followed) as relative POSIX paths,
    the marker left out."""
    out: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=False):
        rel = Path(root).relative_to(folder)
        for name in (*dirs, *files):
            p = (rel / name).as_posix()
            if p != MARKER:
                out.add(p)
    return out


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The folder's ownership marker (``{"tool", "kind", "files": {path: kind}}``) or None when it has
    none (or an unreadable one: then the folder is not the tool's)."""
    path = Path(folder) / MARKER
    if not path.is_file() or path.is_symlink():
        return None
    try:
        if path.stat().st_size > 16 * 1024**2:
            return None
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(info, dict) or info.get("tool") != TOOL or not isinstance(info.get("files"), dict):
        return None
    return info


def write_marker(folder: str | os.PathLike, kind: str, files: Iterable[str] | None = None) -> Path:
    """Mark ``folder`` as written by the tool (``kind``): ``files`` (default: everything in it now) are
    added to what the marker already lists."""
    folder = Path(folder)
    old = read_marker(folder) or {}
    listed = dict(old.get("files", {}))
    for f in (_entries(folder) if files is None else files):
        listed.setdefault(str(f), kind)
    from napari_hsi_anomaly import __version__

    info = {"tool": TOOL, "version": __version__, "kind": old.get("kind", kind), "files": listed}
    return write_text(folder / MARKER, json.dumps(info, indent=1, sort_keys=True) + "\n")


def owned_kind(folder: str | os.PathLike) -> str | None:
    """The kind of a folder the tool owns whole (its marker lists everything in it), else None."""
    folder = Path(folder)
    info = read_marker(folder)
    if info is None or not _entries(folder) <= set(info["files"]):
        return None
    return str(info.get("kind"))


def replaceable(target: str | os.PathLike, kinds: Iterable[str]) -> bool:
    """``target`` may be replaced whole: missing, an empty folder, or a folder the tool owns whole
    with a marker of one of ``kinds``."""
    t = Path(target)
    if not t.exists() and not t.is_symlink():
        return True
    if t.is_symlink() or not t.is_dir():
        return False
    if not any(t.iterdir()):
        return True
    return owned_kind(t) in set(kinds)


def check_replaceable(target: str | os.PathLike, kinds: Iterable[str], what: str) -> Path:
    """``target`` (see ``replaceable``) or ``OwnershipError`` naming it; nothing is touched."""
    t = Path(target)
    kinds = tuple(kinds)
    if replaceable(t, kinds):
        return t
    if t.is_symlink() or not t.is_dir():
        raise OwnershipError(f"{what} {t} exists and is not a folder; choose a new folder name.")
    info = read_marker(t)
    if info is None:
        foreign = sorted(f.name for f in t.iterdir())
    else:
        foreign = sorted(_entries(t) - set(info["files"]))
    shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
    if info is not None and not foreign:
        raise OwnershipError(f"{what} {t} holds a saved {info.get('kind')}, not a {' or '.join(kinds)}; "
                             "choose a new folder name.")
    legacy = {"profile.json", "arrays.safetensors", "model", "config.json", "model.safetensors"}
    older = (" (if it is a save of an older version, which had no ownership marker, delete it yourself)"
             if info is None and set(foreign) <= legacy else "")
    raise OwnershipError(f"{what} {t} holds other files than a saved {kinds[0]} written by this tool "
                         f"({shown}){older}; saving replaces the folder whole: choose a new or empty folder.")


def check_may_write(folder: str | os.PathLike, names: Iterable[str], what: str = "--out") -> None:
    """Files ``names`` may be written into ``folder``: each is missing or listed in the folder's marker
    (the tool wrote it). ``OwnershipError`` naming the first clash; nothing is touched."""
    folder = Path(folder)
    info = read_marker(folder) if folder.is_dir() else None
    listed = set(info["files"]) if info else set()
    for name in names:
        p = folder / name
        if (p.exists() or p.is_symlink()) and name not in listed:
            raise OwnershipError(f"{what} {folder}: {name} already exists and was not written by this tool; "
                                 "choose another folder (nothing was written).")


def claim(folder: str | os.PathLike, names: Iterable[str], kind: str) -> None:
    """Record in ``folder``'s marker that the tool wrote ``names`` (so a re-run may replace them)."""
    write_marker(folder, kind, [str(n) for n in names])


# ---------------------------------------------------------------------------------------------------
# folders


@contextmanager
def atomic_folder(target: str | os.PathLike, kind: str | None = None, *,
                  keep_on_error: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; when the block ends without error it is marked
    (``kind``), ``fsync``-ed and replaces ``target`` (the old folder is removed only after the rename).

    On an error inside the block, ``target`` is left as it was and the temporary folder removed. An
    error after the block (marking, syncing, renaming) with ``keep_on_error`` keeps the complete
    temporary folder and raises ``HsiAnomalyError`` naming it (a trained model is never lost).
    The caller checks ownership first (``check_replaceable``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old: Path | None = None
    done = False
    try:
        yield tmp
        done = True
        if kind is not None:
            write_marker(tmp, kind)
        normal_permissions(tmp)
        _fsync_tree(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            old.rmdir()
            target.rename(old)
        tmp.rename(target)
        _fsync_dir(target.parent)
    except BaseException as exc:
        if old is not None and not target.exists():
            old.rename(target)
            old = None
        if done and keep_on_error and tmp.exists() and isinstance(exc, OSError):
            raise HsiAnomalyError(f"Could not put the result in place at {target} ({reason(exc)}); it is "
                                  f"kept complete in {tmp}: move or rename that folder.") from None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def reason(exc: BaseException) -> str:
    """A short text for an ``OSError`` (``no space left on the device``, the strerror)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def keep_elsewhere(write, kind: str) -> Path | None:
    """After a failed save to ``target``: call ``write(folder)`` on a fresh folder in the system's
    temporary directory (another disk, often) and return it, or None if that fails too."""
    try:
        spare = Path(tempfile.mkdtemp(prefix=f"hsi-anomaly-unsaved-{kind}-"))
    except OSError:
        return None
    try:
        write(spare)
        write_marker(spare, kind)
    except Exception:  # noqa: BLE001 - the first failure is what the user is told about
        shutil.rmtree(spare, ignore_errors=True)
        return None
    return spare


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MB chunks (profile arrays, model weights, batch outputs)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
