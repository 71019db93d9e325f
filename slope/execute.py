"""Executing one attempt's notebook with papermill, and naming how it ended.

:func:`execute_attempt` runs anywhere: in the worker process that the runner
starts for each attempt (``python -m slope.execute``), or on a Dask worker.
It never raises for what a notebook does; every ending becomes a status.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from slope.fastkernel import (
    SHARED_SERVER_ENV,
    ForkServerError,
    fast_kernel_options,
    share_fork_server,
    start_fork_server,
    stop_fork_server,
)
from slope.scores import collect_scores, recorded_scores

logger = logging.getLogger(__name__)

NOTEBOOK_FILE = "notebook.ipynb"
RESULT_FILE = "result.json"
KERNEL_START_TRIES = 3
FORK_TRIES = 2  # of them on forked kernels, before one starts cold
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def execute_attempt(job: dict[str, Any]) -> dict[str, Any]:
    """Execute one attempt into ``job["staging"]`` and return how it ended.

    Parameters
    ----------
    job
        ``attempt``, ``notebook`` (path), ``parameters``, ``kernel``,
        ``timeout`` (seconds for the whole notebook), ``staging`` (the
        temporary run folder), ``metric``, and ``output_dir`` (whether the
        notebook declares it).

    Returns
    -------
    dict
        ``status``, ``error`` (None or ename, evalue, cell, traceback),
        ``scores``, ``started``, ``ended``, ``duration_s`` (of which
        ``fork_server_wait_s`` waiting for the fork server's imports),
        ``kernel_starts``, ``kernel_path``, ``kernel_path_reason`` and
        ``kernel_spare`` (whether the kernel was forked ahead, while the
        worker's attempt before ran).
    """
    staging = Path(job["staging"])
    staging.mkdir(parents=True, exist_ok=True)
    parameters = dict(job["parameters"])
    if job.get("output_dir"):
        # The kernel runs in the run's folder: "." stays true after the swap.
        parameters["output_dir"] = "."

    started = dt.datetime.now(dt.timezone.utc)
    clock = time.monotonic()
    status, error, tries = "failed", None, 0
    kernel = {"path": "cold", "reason": "--cold-kernels"}
    cold = bool(job.get("cold_kernels"))
    waited = 0.0  # for the fork server's imports, which every attempt shares
    while tries < KERNEL_START_TRIES:
        tries += 1
        asked = time.monotonic()
        engine_kwargs = {} if cold else fast_kernel_options(kernel, job["kernel"])
        waited += time.monotonic() - asked
        status, error = _run_papermill(job, parameters, staging, engine_kwargs)
        if status != "kernel_start_failed":
            break
        logger.warning("%s: the kernel did not start (try %d)", job["attempt"], tries)
        # A kernel can lose a port it was given to another process before it
        # binds it ("Address already in use"): a second fork, on new ports,
        # usually starts. Twice failed, the fork server is not trusted.
        if kernel["path"] == "fork" and tries >= FORK_TRIES:
            cold = True
            kernel.update(
                path="cold", reason="a forked kernel did not start", spare=False
            )

    if status == "kernel_start_failed":
        status = "failed"
    scores = _read_scores(staging / NOTEBOOK_FILE)
    if status == "ok" and job["metric"] not in scores:
        status, error = "no_score", _no_score_error(job["metric"], scores)
    return {
        "status": status,
        "error": error,
        "scores": scores,
        "started": started.isoformat(),
        "ended": dt.datetime.now(dt.timezone.utc).isoformat(),
        "duration_s": round(time.monotonic() - clock, 3),
        "fork_server_wait_s": round(waited, 3),
        "kernel_starts": tries,
        "kernel_path": kernel["path"],
        "kernel_path_reason": kernel["reason"],
        "kernel_spare": bool(kernel.get("spare")),
    }


def _run_papermill(
    job: dict[str, Any],
    parameters: dict[str, Any],
    staging: Path,
    engine_kwargs: dict[str, Any],
) -> tuple[str, dict[str, Any] | None]:
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    deadline = time.monotonic() + float(job["timeout"])
    try:
        papermill.execute_notebook(
            job["notebook"],
            str(staging / NOTEBOOK_FILE),
            parameters=parameters,
            kernel_name=job["kernel"],
            cwd=str(staging),
            progress_bar=False,
            start_timeout=job.get("start_timeout", 60),
            timeout_func=lambda cell: max(1, int(deadline - time.monotonic() + 0.999)),
            shutdown_kernel="immediate",
            **engine_kwargs,
        )
    except PapermillExecutionError as err:
        cell = _last_cell(staging)
        return "failed", _error(err.ename, err.evalue, cell, err.traceback)
    except CellTimeoutError as err:
        message = f"the notebook ran past its timeout of {job['timeout']:g} s"
        return "timeout", _error("Timeout", message, _last_cell(staging), [str(err)])
    except DeadKernelError as err:
        message = f"the kernel died while running the notebook ({err})"
        return "kernel_died", _error("DeadKernel", message, _last_cell(staging), [])
    except NoSuchKernel as err:
        message = (
            f"the notebook names the kernel {job['kernel']!r}, which is not installed; "
            "`jupyter kernelspec list` shows those that are"
        )
        return "failed", _error("NoSuchKernel", message, NO_CELL, [str(err)])
    except ForkServerError as err:
        return "kernel_start_failed", _error("KernelStart", str(err), NO_CELL, [])
    except RuntimeError as err:
        if "Kernel didn't respond" in str(err) or "Kernel died before" in str(err):
            return "kernel_start_failed", _error("KernelStart", str(err), NO_CELL, [])
        raise
    return "ok", None


def _error(
    ename: str,
    evalue: str,
    cell: tuple[int | None, int | None],
    traceback: list[str],
) -> dict[str, Any]:
    """The error as run.json keeps it; ``cell`` is (index, execution count)."""
    lines = [ANSI.sub("", line) for line in traceback]
    return {
        "ename": ename,
        "evalue": evalue,
        "cell": cell[0],
        "execution_count": cell[1],
        "traceback": "\n".join(lines)[-4000:],
    }


NO_CELL = (None, None)


def _no_score_error(metric: str, scores: dict[str, Any]) -> dict[str, Any]:
    """Why a notebook that ran to its end has no score, and what to write."""
    message = (
        f"the notebook ran to its end without recording {metric!r} "
        f"(it recorded {recorded_scores(scores)}); "
        f"call slope.record_scores({metric}=...) in it, or set 'metric' in "
        "params/project.yaml to one it records"
    )
    return _error("NoScore", message, NO_CELL, [])


def _last_cell(staging: Path) -> tuple[int | None, int | None]:
    """The last cell papermill started: its index in the saved notebook and its
    execution count, the ``In [n]`` that JupyterLab and the run page show."""
    try:
        nb = json.loads((staging / NOTEBOOK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return NO_CELL
    started = [
        (index, cell.get("execution_count"))
        for index, cell in enumerate(nb.get("cells", []))
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else NO_CELL


def _read_scores(path: Path) -> dict[str, float]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return collect_scores(nb)


DONE = "slope-done"
COLD_KERNELS_ENV = "SLOPE_COLD_KERNELS"


def main() -> int:
    """Serve jobs from stdin, one JSON line each, until stdin closes.

    The result goes beside the job's notebook; a line ``slope-done`` on
    stdout says it is there. One worker serves many attempts, so papermill
    and its kernel machinery are imported once, not once per attempt.
    """
    import signal

    # SIGTERM from the runner ends the run as Ctrl-C would: kernels shut down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.basicConfig(level=os.environ.get("SLOPE_LOG_LEVEL", "WARNING"))
    # Popped, so that kernels get the environment they always had.
    share_fork_server(os.environ.pop(SHARED_SERVER_ENV, None))
    if not os.environ.pop(COLD_KERNELS_ENV, None):
        start_fork_server()  # it imports while this process imports papermill
    import papermill  # noqa: F401 - paid once, before the first job

    try:
        for line in sys.stdin:
            job = json.loads(line)
            result = execute_attempt(job)
            result_file = Path(job["staging"]) / RESULT_FILE
            text = json.dumps(result, ensure_ascii=False)
            result_file.write_text(text, encoding="utf-8")
            sys.stdout.write(DONE + "\n")
            sys.stdout.flush()
    finally:
        stop_fork_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
