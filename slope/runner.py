"""Running the pending attempts: one worker process each, a few at a time.

The runner owns the project's lock, decides which attempts are pending,
starts ``python -m slope.execute`` for each with its BLAS threads capped,
and commits every run as soon as it ends. Ctrl-C or SIGTERM stops the
workers (their kernels shut down), keeps every committed run and says what
was interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Protocol

from slope.attempts import Attempt
from slope.exceptions import LockError
from slope.execute import COLD_KERNELS_ENV, DONE, RESULT_FILE
from slope.fastkernel import SHARED_SERVER_ENV, ForkServer
from slope.fastkernel.client import unavailable_reason
from slope.fastkernel.preload import PRELOAD_ENV
from slope.fingerprint import fingerprint_attempt
from slope.model import MODEL_FILE, file_sha256
from slope.paths import PROJECT_DIR_ENV
from slope.project import Project
from slope.runs import append_history, commit_run, read_run, staging_dir

logger = logging.getLogger(__name__)

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
GRACE_S = 30.0  # beyond the attempt's own timeout, before the worker is stopped


@dataclass
class Plan:
    """What a run of ``run_all.py`` will do with each valid attempt."""

    pending: list[Attempt] = field(default_factory=list)
    skipped: list[Attempt] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    last_seconds: dict[str, float | None] = field(default_factory=dict)  # by id

    def longest_first(self) -> list[Attempt]:
        """The pending attempts, those that took longest last time first.

        Attempts never run before come first, in their order: they may be
        long. With several workers, this leaves the short ones for the end,
        where they fill the gaps instead of a long one running alone.
        """

        def expected(attempt: Attempt) -> tuple[bool, float]:
            seconds = self.last_seconds.get(attempt.id)
            return seconds is not None, -(seconds or 0.0)

        return sorted(self.pending, key=expected)


def plan_runs(
    project: Project,
    attempts: Iterable[Attempt],
    *,
    only: list[str] | None = None,
    force: bool = False,
) -> Plan:
    """Split the valid attempts into pending and up to date."""
    plan = Plan()
    digests: dict[Path, str] = {}
    for attempt in attempts:
        if not attempt.valid or not selected(attempt.id, only):
            continue
        fingerprint = fingerprint_attempt(attempt, project.root, digests)
        plan.fingerprints[attempt.id] = fingerprint
        last = read_run(project.runs_dir, attempt.id)
        plan.last_seconds[attempt.id] = _own_seconds(last)
        current = last and last["status"] == "ok" and last["fingerprint"] == fingerprint
        (plan.skipped if current and not force else plan.pending).append(attempt)
    return plan


def _own_seconds(record: dict[str, Any] | None) -> float | None:
    """How long a run took, less its wait for the fork server's imports."""
    if not record or record.get("duration_s") is None:
        return None
    return record["duration_s"] - (record.get("fork_server_wait_s") or 0.0)


def selected(attempt_id: str, only: list[str] | None) -> bool:
    """Whether ``--only`` patterns (ids or globs) select this attempt."""
    return not only or any(fnmatchcase(attempt_id, pattern) for pattern in only)


def default_workers() -> int:
    """The number of attempts to run at once: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def project_lock(project: Project):
    """Return the project's lock, held for as long as attempts run.

    Raises
    ------
    LockError
        When another ``run_all.py`` holds it.
    """
    from filelock import FileLock, Timeout

    project.runs_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(project.runs_dir / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout as err:
        raise LockError(
            f"another run_all.py is running in {project.root} (it holds "
            f"{project.runs_dir / '.lock'}); wait for it to finish, nothing was changed"
        ) from err
    return lock


class Runner:
    """Executes a plan's pending attempts and commits each run as it ends."""

    def __init__(
        self,
        project: Project,
        plan: Plan,
        *,
        workers: int | None = None,
        timeout: float | None = None,
        on_done: Callable[[dict[str, Any]], None] | None = None,
        backend: Backend | None = None,
        cold_kernels: bool = False,
    ) -> None:
        self.project = project
        self.cold_kernels = cold_kernels
        self.plan = plan
        self.workers = max(1, workers or default_workers())
        self.timeout = timeout
        self.on_done = on_done or (lambda record: None)
        self.stopping = threading.Event()
        self.backend = backend or LocalBackend(project, self.workers, cold_kernels)
        self.git_commit = git_commit(project.root)

    def run(self) -> list[dict[str, Any]]:
        """Run every pending attempt; return their records in the order they ended.

        Raises
        ------
        KeyboardInterrupt
            After Ctrl-C or SIGTERM, once the workers stopped and every run
            that ended before was committed.
        """
        records: list[dict[str, Any]] = []
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="slope")
        order = self.plan.pending if self.workers == 1 else self.plan.longest_first()
        futures = {pool.submit(self._run_one, a): a for a in order}
        try:
            with _sigterm_as_interrupt():
                not_done: set[Future] = set(futures)
                while not_done:
                    done, not_done = wait(
                        not_done, timeout=0.2, return_when=FIRST_COMPLETED
                    )
                    records.extend(f.result() for f in done if f.result())
        except KeyboardInterrupt:
            self._stop(futures)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.backend.close()
        return records

    def _run_one(self, attempt: Attempt) -> dict[str, Any] | None:
        if self.stopping.is_set():
            return None
        staging = staging_dir(self.project.runs_dir, attempt.id)
        logger.info("%s: started (%s)", attempt.id, attempt.notebook)
        result = self._execute(attempt, staging)
        if result is None:
            shutil.rmtree(staging, ignore_errors=True)
            return None

        record = self._record(attempt, staging, result)
        commit_run(self.project.runs_dir, staging, record)
        append_history(self.project.runs_dir, record)
        self.on_done(record)
        return record

    def _execute(self, attempt: Attempt, staging: Path) -> dict[str, Any] | None:
        timeout = self.timeout or attempt.timeout or self.project.timeout
        job = {
            "attempt": attempt.id,
            "notebook": str(attempt.spec.path),
            "parameters": attempt.parameters,
            "kernel": attempt.spec.kernel,
            "timeout": timeout,
            "staging": str(staging),
            "metric": self.project.metric,
            "output_dir": "output_dir" in attempt.spec.parameters,
            "cold_kernels": self.cold_kernels,
        }
        if not attempt.spec.kernel_from_metadata:
            logger.info(
                "%s: notebooks/%s names no kernel; running it with %r",
                attempt.id,
                attempt.notebook,
                attempt.spec.kernel,
            )
        result = self.backend.execute(job, limit=timeout + 3 * 60 + GRACE_S)
        if result.get("kernel_path") == "cold" and not self.cold_kernels:
            logger.info("%s: cold kernel: %s", attempt.id, result["kernel_path_reason"])
        return None if self.stopping.is_set() else result

    def _record(
        self, attempt: Attempt, staging: Path, result: dict[str, Any]
    ) -> dict[str, Any]:
        model = staging / MODEL_FILE
        return {
            "attempt": attempt.id,
            "notebook": attempt.notebook,
            "date": attempt.date.isoformat() if attempt.date else None,
            "notes": attempt.notes,
            **result,
            "fingerprint": self.plan.fingerprints[attempt.id],
            "parameters": attempt.parameters,
            "kernel": attempt.spec.kernel,
            "model": {"file": MODEL_FILE, "sha256": file_sha256(model)}
            if model.is_file()
            else None,
            "versions": engine_versions(),
            "git_commit": self.git_commit,
        }

    def _stop(self, futures: dict[Future, Attempt]) -> None:
        unfinished = [a.id for f, a in futures.items() if not f.done()]
        self.stopping.set()
        interrupted = sorted(self.backend.interrupt())
        not_started = [a for a in unfinished if a not in interrupted]
        logger.warning(
            "interrupted: %s; not started: %s",
            ", ".join(interrupted) or "none",
            ", ".join(not_started) or "none",
        )


class Backend(Protocol):
    """Where attempts execute: local worker processes, or a cluster."""

    def execute(self, job: dict[str, Any], limit: float) -> dict[str, Any]:
        """Run one job into ``job["staging"]``; return its result, even when lost.

        Called from several threads at once, one job per thread.
        """

    def interrupt(self) -> list[str]:
        """Stop every running job, shutting its kernel down; return their ids."""

    def close(self) -> None:
        """Release the workers once every job ended."""


class LocalBackend:
    """A few ``python -m slope.execute`` processes on this machine, one per thread.

    Unless kernels start cold, the workers share one fork server, started
    here so that it imports while they start.
    """

    def __init__(
        self, project: Project, workers: int, cold_kernels: bool = False
    ) -> None:
        self.project = project
        self.workers = workers
        self.cold_kernels = cold_kernels
        self.local = threading.local()
        self.all_workers: list[_Worker] = []
        self.env = self._environment()
        self.server: ForkServer | None = None
        self.server_dir: str | None = None
        if not cold_kernels and unavailable_reason() is None:
            self._start_fork_server()

    def execute(self, job: dict[str, Any], limit: float) -> dict[str, Any]:
        worker = self._worker()
        finished = worker.execute(job, limit)
        result_file = Path(job["staging"]) / RESULT_FILE
        if finished and result_file.is_file():
            return json.loads(result_file.read_text(encoding="utf-8"))
        return _worker_lost(worker)

    def interrupt(self) -> list[str]:
        running = [w.attempt for w in self.all_workers if w.attempt]
        for worker in self.all_workers:
            worker.interrupt()
        deadline = time.monotonic() + 15
        for worker in self.all_workers:
            worker.wait(max(0.1, deadline - time.monotonic()))
        return running

    def close(self) -> None:
        for worker in self.all_workers:
            worker.let_go()
        deadline = time.monotonic() + 30
        for worker in self.all_workers:
            worker.wait(max(0.1, deadline - time.monotonic()))
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.server_dir is not None:
            shutil.rmtree(self.server_dir, ignore_errors=True)

    def _worker(self) -> _Worker:
        worker = getattr(self.local, "worker", None)
        if worker is None:
            name = f"worker-{len(self.all_workers)}.log"
            log = self.project.runs_dir / ".logs" / name
            env = dict(self.env)
            if self.server is not None:
                env[SHARED_SERVER_ENV] = self.server.path
            worker = self.local.worker = _Worker(env, log)
            self.all_workers.append(worker)
        return worker

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env[PROJECT_DIR_ENV] = str(self.project.root)
        threads = str(max(1, default_workers() // self.workers))
        for name in THREAD_VARIABLES:
            env.setdefault(name, threads)
        if self.cold_kernels:
            env[COLD_KERNELS_ENV] = "1"  # the worker then starts no fork server
        if self.project.preload and PRELOAD_ENV not in env:
            env[PRELOAD_ENV] = "+" + ",".join(self.project.preload)
        return env

    def _start_fork_server(self) -> None:
        # A private folder: whoever can connect may start processes as us.
        self.server_dir = tempfile.mkdtemp(prefix="slope-")
        path = os.path.join(self.server_dir, "fork.sock")
        try:
            log = self.project.runs_dir / ".logs" / "fork-server.log"
            self.server = ForkServer(env=self.env).start(listen=path, log=log)
        except OSError as err:
            logger.warning("the fork server did not start: %s", err)


class _Worker:
    """One ``python -m slope.execute`` process, serving attempts one at a time."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None
        self.attempt: str | None = None

    def execute(self, job: dict[str, Any], limit: float) -> bool:
        """Send a job and wait for it; False when the worker ended before it did."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.attempt = job["attempt"]
        timer = threading.Timer(limit, self._overrun, args=(job["attempt"], limit))
        timer.start()
        try:
            self.process.stdin.write(json.dumps(job, default=str) + "\n")
            self.process.stdin.flush()
            for line in self.process.stdout:
                if line.strip() == DONE:
                    return True
            self.process.wait()
            return False
        except BrokenPipeError:
            return False
        finally:
            timer.cancel()
            self.attempt = None

    def _start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slope.execute"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                text=True,
                # Ctrl-C reaches the worker once, from the runner, not twice.
                start_new_session=True,
            )

    def _overrun(self, attempt: str, limit: float) -> None:
        logger.warning(
            "%s: the worker did not stop in %.0f s; ending it", attempt, limit
        )
        _terminate(self.process)

    def interrupt(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def wait(self, seconds: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            _terminate(self.process)

    def let_go(self) -> None:
        """Close the worker's stdin: it ends once its job, if any, is done."""
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()

    def tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""


def _terminate(process: subprocess.Popen) -> int:
    process.terminate()
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _worker_lost(worker: _Worker) -> dict[str, Any]:
    code = worker.process.poll() if worker.process else None
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return {
        "status": "failed",
        "error": {
            "ename": "WorkerError",
            "evalue": f"the worker process ended with code {code} before the run did",
            "cell": None,
            "traceback": worker.tail(),
        },
        "scores": {},
        "started": now,
        "ended": now,
        "duration_s": 0.0,
        "fork_server_wait_s": 0.0,
        "kernel_starts": 0,
    }


class _sigterm_as_interrupt:
    """Within the block, SIGTERM raises KeyboardInterrupt as Ctrl-C does."""

    def __enter__(self) -> None:
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def engine_versions() -> dict[str, str]:
    """Versions of the engine's side: Python, scikit-learn, papermill, slope."""
    from slope.model import library_versions

    return library_versions()


def git_commit(root: Path) -> str | None:
    """The project's current git commit, with ``-dirty`` when files changed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
