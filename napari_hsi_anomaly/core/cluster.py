"""A dask client for the batch and for blocks: an existing scheduler (``tcp://`` address or scheduler
file) or a new ``LocalCluster``; every failure to get one is one clear line within a set time.

``connect`` checks that something answers as a dask scheduler before a ``Client`` is made (a refused
``Client`` lingers and blocks at exit), then waits at most ``worker_timeout`` seconds for a worker (a
scheduler with no worker would otherwise wait forever). A local cluster never has more workers than
the machine has CPU cores.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_hsi_anomaly.core.errors import HsiAnomalyError

CONNECT_TIMEOUT_S = 5.0
WORKER_TIMEOUT_S = 60.0


@dataclass
class Connection:
    """A dask ``client``, the ``cluster`` this process started (None for an existing scheduler) and
    ``notes`` worth a line to the user (a clamped worker count, the dashboard address)."""

    client: Any
    cluster: Any = None
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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


def scheduler_address(scheduler: str | None = None, scheduler_file: str | os.PathLike | None = None) -> str:
    """The scheduler's address from ``scheduler`` (``tcp://host:port`` or ``host:port``) or from the
    JSON file ``dask scheduler --scheduler-file`` writes."""
    if scheduler and scheduler_file:
        raise HsiAnomalyError("Give either --scheduler ADDRESS or --scheduler-file FILE, not both.")
    if scheduler_file:
        path = Path(scheduler_file).expanduser()
        try:
            info = json.loads(path.read_text())
            addr = info["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HsiAnomalyError(f"--scheduler-file {path}: not a dask scheduler file "
                                  f"({type(exc).__name__}); give the file that `dask scheduler "
                                  "--scheduler-file FILE` wrote.") from None
        if not isinstance(addr, str) or not addr:
            raise HsiAnomalyError(f"--scheduler-file {path}: its address is empty.")
        return addr
    text = str(scheduler)
    return text if "://" in text else f"tcp://{text}"


def clamp_workers(workers: int | None) -> tuple[int, str | None]:
    """Local workers: ``workers`` (default: CPU cores, at most 4), never more than the CPU cores."""
    cores = os.cpu_count() or 1
    if workers is None:
        return max(1, min(4, cores)), None
    n = int(workers)
    if n < 1:
        raise HsiAnomalyError(f"--workers must be at least 1; got {workers}.")
    if n > cores:
        return cores, f"--workers {n} is more than this machine's {cores} CPU cores; using {cores}"
    return n, None


def connect(scheduler: str | None = None, workers: int | None = None, *, scheduler_file: Any = None,
            processes: bool = True, memory_limit: str | None = "auto",
            worker_timeout: float = WORKER_TIMEOUT_S) -> Connection:
    """A client of an existing scheduler (``scheduler`` or ``scheduler_file``), with at least one
    worker within ``worker_timeout`` s, or of a new ``LocalCluster`` of ``workers`` single-threaded
    workers; ``HsiAnomalyError`` with one line otherwise."""
    from distributed import Client, LocalCluster

    if scheduler or scheduler_file:
        addr = scheduler_address(scheduler, scheduler_file)
        try:
            _probe_scheduler(addr)
            client = Client(addr, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise HsiAnomalyError(
                f"Cannot reach the dask scheduler at {addr} within {CONNECT_TIMEOUT_S:g} s "
                f"({type(exc).__name__}); start one with `dask scheduler` (and `dask worker ADDRESS` on "
                "each machine) or leave out --scheduler to use a local cluster."
            ) from None
        except (Exception, MemoryError) as exc:  # something answered, but not as a dask scheduler
            raise HsiAnomalyError(
                f"Cannot reach the dask scheduler at {addr}: what answers there is not a dask "
                f"scheduler ({type(exc).__name__}); check the address and port (default 8786)."
            ) from None
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except (TimeoutError, OSError):
            client.close()
            raise HsiAnomalyError(
                f"The dask scheduler at {addr} has no worker after {worker_timeout:g} s; start one with "
                f"`dask worker {addr}` (or raise --worker-timeout)."
            ) from None
        conn = Connection(client)
    else:
        n, note = clamp_workers(workers)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               dashboard_address=":0", memory_limit=memory_limit,  # a free port
                               silence_logs=40)
        conn = Connection(Client(cluster, set_as_default=False), cluster, [note] if note else [])
    link = _dashboard(conn.client)
    if link:
        conn.notes.append(f"dask dashboard: {link}")
    return conn


def _dashboard(client: Any) -> str | None:
    try:
        services = client.scheduler_info().get("services", {})
        return client.dashboard_link if "dashboard" in services else None
    except Exception:  # noqa: BLE001 - an address is a courtesy, never a failure
        return None
