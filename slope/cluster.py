"""Running attempts on a Dask cluster: ``run_all.py --scheduler ADDRESS``.

Each pending attempt becomes one task. On a worker, :func:`run_job` executes
the attempt with :func:`slope.execute.execute_attempt` into a temporary folder
and sends home the result with every file the notebook wrote; this machine
writes them into the run's staging folder, and the runner commits them as it
does after a local run. Workers need slope installed and the project at the
same path as here (or on shared storage): the notebooks and data are read there.

A worker lost mid-attempt (killed, out of memory, disconnected) gets one
retry on another worker; lost again, the attempt ends ``kernel_died`` with an
error naming the workers. slope enforces the one retry itself, whatever the
scheduler's ``distributed.scheduler.allowed-failures``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slope.exceptions import SlopeError
from slope.execute import RESULT_FILE
from slope.paths import PROJECT_DIR_ENV
from slope.project import Project
from slope.runner import THREAD_VARIABLES

logger = logging.getLogger(__name__)

LOCAL = "local"
NO_DASK = (
    "--scheduler needs Dask: pip install 'slope[dask]' "
    "(with conda: conda install dask distributed)"
)
RETRIES = 1  # reruns of an attempt whose worker was lost
POLL_S = 0.5
STOP_S = 15.0  # an interrupt waits this long for the workers' runs to end
CONNECT_S = 30
NO_WORKERS_S = 120.0  # a job queued this long fails if the cluster has no worker


def import_distributed():
    """Return the ``distributed`` module, or say how to install it.

    Raises
    ------
    SlopeError
        When the ``dask`` extra is not installed.
    """
    try:
        import distributed
    except ImportError as err:
        raise SlopeError(NO_DASK) from err
    return distributed


class DaskBackend:
    """Runs each attempt as a task on a Dask cluster; a backend for the runner.

    Parameters
    ----------
    project
        The project; its root must exist at the same path on every worker.
    address
        ``tcp://HOST:PORT`` of a running ``dask scheduler``, or ``local`` for
        a cluster of worker processes on this machine.
    workers
        With ``local``, the number of worker processes (default: the cores).

    Raises
    ------
    SlopeError
        When Dask is missing, the address is malformed, or the scheduler
        cannot be reached or has no worker.
    """

    def __init__(
        self, project: Project, address: str, workers: int | None = None
    ) -> None:
        distributed = import_distributed()
        self.project = project
        self.cluster = None
        if address == LOCAL:
            self.cluster = start_local_cluster(workers)
            address = self.cluster.scheduler_address
        elif "://" not in address:
            raise SlopeError(
                f"--scheduler {address!r} is not a scheduler address; expected "
                "tcp://HOST:PORT (as printed by `dask scheduler`) or 'local'"
            )
        self.address = address
        try:
            self.client = connect(distributed, address)
        except SlopeError:
            if self.cluster is not None:
                self.cluster.close()
            raise
        self.topic = f"slope-started-{uuid.uuid4().hex}"
        self.lock = threading.Lock()
        self.starts: dict[str, list[tuple[float, str]]] = {}
        self.running: dict[str, tuple[str, Any]] = {}  # key: (attempt, future)
        self.closed = False
        self.client.subscribe_topic(self.topic, self._started)
        info = self.client.scheduler_info(n_workers=0)
        logger.info(
            "running on the Dask cluster at %s: %d workers, %d threads",
            address,
            info["n_workers"],
            info["total_threads"],
        )

    @property
    def slots(self) -> int:
        """The cluster's threads: how many attempts run at once."""
        return max(1, self.client.scheduler_info(n_workers=0)["total_threads"])

    def execute(self, job: dict[str, Any], limit: float) -> dict[str, Any]:
        """Run one job on the cluster; write its files into ``job["staging"]``."""
        key = f"slope-{job['attempt']}-{uuid.uuid4().hex}"
        future = self.client.submit(
            run_job, job, str(self.project.root), self.topic, key=key, pure=False
        )
        with self.lock:
            self.running[key] = (job["attempt"], future)
        try:
            reply = self._wait(future, key, limit)
        finally:
            with self.lock:
                self.running.pop(key, None)
                self.starts.pop(key, None)
            future.release()  # the cluster may forget the files now

        write_files(Path(job["staging"]), reply)
        return reply["result"]

    def interrupt(self) -> list[str]:
        """Cancel every job and shut down their kernels; return the started ones."""
        with self.lock:
            running = dict(self.running)
        if not running:
            return []
        self.client.cancel([f for _, f in running.values()], force=True)
        started = self._stop_jobs(list(running)) | set(self.starts)
        return [attempt for key, (attempt, _) in running.items() if key in started]

    def _stop_jobs(self, keys: list[str]) -> set[str]:
        """Kill the jobs' kernels on every worker; return those that were running.

        Waits for the jobs to end, ``STOP_S`` at most.
        """
        deadline = time.monotonic() + STOP_S
        stopped: set[str] = set()
        while True:
            replies = self.client.run(stop_jobs, keys, on_error="return")
            left = []
            for worker, reply in replies.items():
                if isinstance(reply, Exception):
                    logger.warning("could not stop the runs on %s: %s", worker, reply)
                else:
                    left.extend(reply)
            stopped.update(left)
            if not left or time.monotonic() > deadline:
                return stopped
            time.sleep(POLL_S)

    def close(self) -> None:
        """Disconnect, and stop the local cluster if this backend started one."""
        if self.closed:
            return
        self.closed = True
        self.client.unsubscribe_topic(self.topic)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def _started(self, event: tuple[float, dict[str, str]]) -> None:
        _, message = event
        with self.lock:
            starts = self.starts.setdefault(message["key"], [])
            starts.append((time.monotonic(), message["worker"]))
            attempt, _ = self.running.get(message["key"], ("?", None))
        if len(starts) == RETRIES + 1:
            logger.warning(
                "%s: the Dask worker %s was lost; running the attempt again on %s",
                attempt,
                starts[-2][1],
                starts[-1][1],
            )

    def _wait(self, future, key: str, limit: float) -> dict[str, Any]:
        from distributed import KilledWorker

        queued = time.monotonic()
        while True:
            try:
                return future.result(timeout=POLL_S)
            except TimeoutError:
                pass
            except KilledWorker as err:
                worker = getattr(err.last_worker, "address", err.last_worker)
                return _reply(_lost(self._workers(key) or [str(worker)]))
            except CancelledError:
                return _reply(_ended("Cancelled", "the run was cancelled"))
            except Exception as err:  # the task raised: the run records it
                return _reply(_task_error(err, self._workers(key)))

            ended = self._overdue(key, limit, queued)
            if ended is not None:
                self.client.cancel([future], force=True)
                self.client.run(stop_jobs, [key], on_error="ignore")
                return _reply(ended)

    def _overdue(self, key: str, limit: float, queued: float) -> dict | None:
        """The result of a job to give up on, or None while it may still end."""
        starts = self.starts.get(key, [])
        if len(starts) > RETRIES + 1:
            return _lost([worker for _, worker in starts[:-1]])
        if starts and time.monotonic() - starts[-1][0] > limit:
            message = f"the worker {starts[-1][1]} did not end the run in {limit:g} s"
            return _ended("WorkerTimeout", message)
        waited = time.monotonic() - queued
        if not starts and waited > NO_WORKERS_S and not self._has_workers():
            return _ended("NoWorkers", self._no_workers(waited))
        return None

    def _workers(self, key: str) -> list[str]:
        return [worker for _, worker in self.starts.get(key, [])]

    def _has_workers(self) -> bool:
        return self.client.scheduler_info(n_workers=0)["n_workers"] > 0

    def _no_workers(self, waited: float) -> str:
        return (
            f"the attempt waited {waited:.0f} s and no Dask worker is connected "
            f"to {self.address}; start one with `dask worker {self.address}`"
        )


def start_local_cluster(workers: int | None):
    """Start worker processes on this machine, one thread each, on 127.0.0.1."""
    import dask
    from distributed import LocalCluster

    from slope.runner import default_workers

    # The scheduler runs in this process and reads its settings now.
    settings = {"distributed.scheduler.allowed-failures": RETRIES}
    try:
        with dask.config.set(settings):
            return LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # a free port, on loopback
                preload=[__name__],  # see dask_setup
            )
    except (OSError, RuntimeError) as err:
        raise SlopeError(
            f"could not start a local Dask cluster ({err}); the lines above say "
            "why, and `run_all.py` without --scheduler runs the attempts here"
        ) from err


def connect(distributed, address: str):
    """Connect a client to the scheduler and wait for a first worker."""
    try:
        client = distributed.Client(address, timeout=CONNECT_S)
    except (OSError, TimeoutError) as err:
        raise SlopeError(
            f"cannot reach the Dask scheduler at {address} ({err}); start one "
            "with `dask scheduler` and pass the address it prints"
        ) from err
    try:
        client.wait_for_workers(1, timeout=CONNECT_S)
    except TimeoutError as err:
        client.close()
        raise SlopeError(
            f"no Dask worker joined the scheduler at {address} in {CONNECT_S} s; "
            f"start some with `dask worker {address}`"
        ) from err
    return client


def write_files(staging: Path, reply: dict[str, Any]) -> None:
    """Write a job's files, and its result as a local worker does, into staging."""
    staging.mkdir(parents=True, exist_ok=True)
    for name, content in reply["files"].items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    result = json.dumps(reply["result"], ensure_ascii=False)
    (staging / RESULT_FILE).write_text(result, encoding="utf-8")


# What follows runs on the workers.


def dask_setup(worker) -> None:
    """Let Ctrl-C reach the runner only; a local cluster's workers preload this.

    The runner then stops the workers' runs itself, as it stops local ones,
    instead of each worker dying of a KeyboardInterrupt of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class _Job:
    attempt: str
    folder: Path
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


_JOBS: dict[str, _Job] = {}
_STOPPED: set[str] = set()
_JOBS_LOCK = threading.Lock()


def run_job(job: dict[str, Any], root: str, topic: str) -> dict[str, Any]:
    """Execute one attempt on this worker; return its result and its files.

    The kernel runs in a temporary folder, which is removed afterwards; the
    project (notebooks, data) is read at ``root``, the same path as on the
    machine that submitted the job.
    """
    from distributed import get_worker

    from slope.execute import execute_attempt

    worker = get_worker()
    key = worker.get_current_task()
    worker.log_event(topic, {"key": key, "worker": worker.address})
    if not Path(job["notebook"]).is_file():
        return _reply(_ended("ProjectNotOnWorker", _not_on_worker(job, root, worker)))

    with _JOBS_LOCK:
        if key in _STOPPED:
            return _reply(_ended("Cancelled", "the run was cancelled"))
        folder = Path(tempfile.mkdtemp(prefix=f"slope-{job['attempt']}-"))
        current = _JOBS[key] = _Job(job["attempt"], folder)
    threading.Thread(target=_guard, args=(current,), daemon=True).start()
    try:
        _set_environment(root)
        result = execute_attempt({**job, "staging": str(folder)})
        files = {
            path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }
    finally:
        with _JOBS_LOCK:
            _JOBS.pop(key, None)
        current.done.set()
        current.stop.set()
        shutil.rmtree(folder, ignore_errors=True)
    return {"result": result, "files": files}


def stop_jobs(keys: list[str]) -> list[str]:
    """Kill the kernels of these jobs on this worker; return those still running.

    Called through ``Client.run`` on every worker, until none runs. A job
    that starts here later returns at once.
    """
    with _JOBS_LOCK:
        _STOPPED.update(keys)
        jobs = {key: _JOBS[key] for key in keys if key in _JOBS}
    for job in jobs.values():
        job.stop.set()
        _kill_kernels(job.folder)
    return list(jobs)


def _guard(job: _Job) -> None:
    """Once the job is stopped, kill every kernel it starts until it ends.

    papermill retries a kernel that died while starting; this ends those too.
    """
    job.stop.wait()
    while not job.done.is_set():
        _kill_kernels(job.folder)
        job.done.wait(0.2)


def _kill_kernels(folder: Path) -> None:
    """Kill the processes of this worker that run in the job's folder."""
    import psutil

    for process in psutil.Process().children(recursive=True):
        try:
            if Path(process.cwd()).is_relative_to(folder):
                process.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def _set_environment(root: str) -> None:
    # Kernels inherit the worker's environment. A worker serves one project:
    # every job sets the same root.
    os.environ[PROJECT_DIR_ENV] = root
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def _not_on_worker(job: dict[str, Any], root: str, worker) -> str:
    return (
        f"{job['notebook']} is not on the Dask worker {worker.address}; workers "
        f"need the project at the same path ({root}) or on shared storage"
    )


# Results for runs that ended outside the notebook.


def _reply(result: dict[str, Any]) -> dict[str, Any]:
    return {"result": result, "files": {}}


def _ended(
    ename: str, evalue: str, status: str = "failed", traceback: str = ""
) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return {
        "status": status,
        "error": {
            "ename": ename,
            "evalue": evalue,
            "cell": None,
            "traceback": traceback,
        },
        "scores": {},
        "started": now,
        "ended": now,
        "duration_s": 0.0,
        "fork_server_wait_s": 0.0,
        "kernel_starts": 0,
    }


def _lost(workers: list[str]) -> dict[str, Any]:
    if len(workers) > 1:
        lost = f"the Dask workers {', '.join(workers)} died while running the attempt"
        lost += f" (it was retried {len(workers) - 1} time(s))"
    else:
        lost = f"the Dask worker {workers[0]} died while running the attempt"
    message = f"{lost}; the worker's log says why (memory, a crash, a lost connection)"
    return _ended("WorkerLost", message, status="kernel_died")


def _task_error(err: Exception, workers: list[str]) -> dict[str, Any]:
    import traceback

    where = f"the Dask worker {workers[-1]}" if workers else "the Dask cluster"
    message = f"the job raised on {where}: {err}"
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    return _ended(type(err).__name__, message, traceback="".join(lines)[-4000:])
