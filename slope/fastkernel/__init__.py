"""Fast kernel starts: a fork server that has paid for the imports once.

A run holds one fork server, ``python -m slope.fastkernel.server``, which its
workers share; a process that executes attempts on its own (a Dask worker)
holds one of its own. The server imports ipykernel
and the modules notebooks use (numpy, pandas, scikit-learn, matplotlib, ...),
starts no thread, and waits. For every attempt it forks a child that becomes
the kernel as ``python -m ipykernel_launcher -f ...`` would: its own session,
the run's folder as working directory, the environment papermill asked for,
fresh random state, no descriptor of the server. No child ever ran another
attempt's code, so none sees another's variables, modules, figures or files.

:func:`fast_kernel_options` gives papermill what it needs for that; where the
server cannot serve a kernel (another language or interpreter, another
environment, no fork on this platform), the kernel starts cold and the
report says why.
"""

from __future__ import annotations

import logging
from typing import Any

from slope.fastkernel.client import (
    SHARED_SERVER_ENV,
    ForkServer,
    ForkServerError,
    get_fork_server,
    share_fork_server,
    stop_fork_server,
    unavailable_reason,
)

logger = logging.getLogger(__name__)
_broken: str | None = None  # why this process's fork server could not start

__all__ = [
    "SHARED_SERVER_ENV",
    "ForkServer",
    "ForkServerError",
    "fast_kernel_options",
    "share_fork_server",
    "start_fork_server",
    "stop_fork_server",
]


def start_fork_server() -> None:
    """Start this process's fork server now, where it can run; do not wait for it."""
    if unavailable_reason() is None:
        try:
            get_fork_server()
        except (OSError, ForkServerError) as err:
            logger.warning("the fork server did not start: %s", err)


def fast_kernel_options(report: dict[str, Any], kernel_name: str) -> dict[str, Any]:
    """papermill's keywords for a kernel from the fork server; none for a cold one.

    Parameters
    ----------
    report
        Receives ``path`` (``fork`` or ``cold``) and ``reason`` (why cold),
        updated again when the kernel starts.
    kernel_name
        The kernel the notebook names.
    """
    global _broken
    reason = unavailable_reason() or _broken or _kernel_refusal(kernel_name)
    if reason is None:
        try:
            server = get_fork_server()
            server.wait_ready()
        except (OSError, ForkServerError) as err:
            # Once is enough: the next attempts start cold without trying again.
            reason = _broken = f"the fork server did not start ({err})"
            logger.warning("%s; kernels start cold", reason)
    if reason is not None:
        report.update(path="cold", reason=reason)
        return {}

    from slope.fastkernel.engine import ENGINE_NAME
    from slope.fastkernel.manager import fork_kernel_manager_class

    report.update(path="fork", reason=None)
    return {
        "engine_name": ENGINE_NAME,
        "kernel_manager_class": fork_kernel_manager_class(server, report),
    }


def _kernel_refusal(kernel_name: str) -> str | None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return f"the kernel {kernel_name!r} is not installed"
    if not (spec.language or "").lower().startswith("python"):
        return f"the kernel {kernel_name!r} runs {spec.language}, not Python"
    return None
