"""The fork server itself: ``python -m slope.fastkernel.server FD``.

It imports ipykernel and the preloaded modules, starts no thread, and then
answers requests on the socket ``FD``, one JSON line each: ``fork`` (reply:
the child's pid) and ``poll`` (reply: the child's exit code, or null while
it runs). It reaps its children, so none is left a zombie, and it ends when
the socket closes, as it does when the process that started it dies. A child
returns from :func:`serve` with its request and becomes the kernel, as
``python -m ipykernel_launcher`` would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

PRELOAD_ENV = "SLOPE_PRELOAD"
IMPORT_ENV: dict[str, str] = {}  # what the preloaded imports added to os.environ
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# What every kernel imports, then what this project's notebooks usually do.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "ipykernel.comm",
    "IPython.core.completer",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.core.pylabtools",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "sqlite3",
    "tornado.platform.asyncio",
    "jupyter_client.session",
    "tornado.ioloop",
    "zmq.eventloop.zmqstream",
)
DEFAULT_PRELOAD = (
    "numpy",
    "pandas",
    "pandas.io.formats.html",
    "pandas.io.formats.string",
    "scipy.stats",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.tree",
    "joblib",
    "narwhals._pandas_like.dataframe",  # scikit-learn reads frames through it
    "narwhals._pandas_like.namespace",
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.BmpImagePlugin",
    "PIL.GifImagePlugin",
    "PIL.PpmImagePlugin",
    "seaborn",
    "slope",
)


# Set per kernel by the launcher; any other difference changes what an
# import may have read, and the kernel then starts cold.
def preload_modules() -> list[str]:
    """The modules a fork server imports: ``$SLOPE_PRELOAD`` or the default.

    ``SLOPE_PRELOAD`` is a comma-separated list; a leading ``+`` adds to the
    default instead of replacing it (``+xgboost,lightgbm``).
    """
    text = os.environ.get(PRELOAD_ENV, "").strip()
    if not text:
        return list(DEFAULT_PRELOAD)
    extra = text.startswith("+")
    names = [n.strip() for n in text.lstrip("+").split(",") if n.strip()]
    return [*DEFAULT_PRELOAD, *names] if extra else names


def serve(fd: int) -> dict[str, Any]:
    """Preload, then fork on request; return only in a child, with its request.

    The server ends when the socket closes: its process ended or stopped it.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    sock = socket.socket(fileno=fd)
    reader = sock.makefile("r", encoding="utf-8")
    exits: dict[int, int] = {}
    try:
        sock.sendall((json.dumps(_preload()) + "\n").encode())
        for line in reader:
            request = json.loads(line)
            _reap(exits)
            if request["op"] == "fork":
                pid = os.fork()
                if pid == 0:
                    reader.close()
                    sock.close()
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    return request
                answer = {"pid": pid}
            else:
                pid = request["pid"]
                answer = {"code": exits[pid] if pid in exits else _still(pid)}
            sock.sendall((json.dumps(answer) + "\n").encode())
    except OSError:
        pass
    os._exit(0)


def _still(pid: int) -> int | None:
    """None while our child runs; after it was reported once, its end is lost."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -9
    return os.waitstatus_to_exitcode(status) if done else None


def _reap(exits: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exits[pid] = os.waitstatus_to_exitcode(status)


def _preload() -> dict[str, Any]:
    import importlib

    before = dict(os.environ)
    started = time.perf_counter()
    loaded, failed = [], {}
    with _as_in_a_kernel():
        for name in [*KERNEL_MODULES, *preload_modules()]:
            try:
                importlib.import_module(name)
                loaded.append(name)
            except Exception as err:  # noqa: BLE001 - what fails here stays lazy
                failed[name] = f"{type(err).__name__}: {err}"
    # Imports set some (sklearn: KMP_*, debugpy: PYDEVD_*); each kernel gets them back.
    IMPORT_ENV.update((k, v) for k, v in os.environ.items() if before.get(k) != v)
    IMPORT_ENV.pop(
        "MPLBACKEND", None
    )  # ipykernel sets it, unless papermill's env has one
    import gc

    gc.collect()
    gc.freeze()  # the children then share these pages instead of copying them
    # Native threads too (a BLAS pool, say): a fork keeps only the caller's.
    threads = len(os.listdir("/proc/self/task"))
    return {
        "ready": True,
        "seconds": round(time.perf_counter() - started, 3),
        "loaded": loaded,
        "failed": failed,
        "threads": threads,
    }


class _KernelStream:
    """A stream that says what ipykernel's output streams say of themselves."""

    encoding = "UTF-8"

    def __init__(self, stream) -> None:
        self.stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


class _as_in_a_kernel:
    """Within the block, imports see what they would see in a cold kernel.

    Some modules read their surroundings once, when imported: pandas asks
    ``get_ipython()`` whether it runs in a kernel (20 columns shown, not the
    terminal's width), matplotlib reads a ``matplotlibrc`` in the working
    directory and ``MPLBACKEND``, pandas the encoding of ``sys.stdout``. A
    cold kernel imports them in an empty run folder, under ipykernel_launcher's
    argv, with the inline backend set and ipykernel's streams.
    """

    def __enter__(self) -> None:
        import builtins
        import tempfile
        import types

        self.saved = os.getcwd(), list(sys.argv), sys.stdout, sys.stderr
        self.folder = tempfile.mkdtemp(prefix="slope-fork-")
        os.chdir(self.folder)
        launcher = sys.modules.get("ipykernel_launcher")
        sys.argv = [getattr(launcher, "__file__", "ipykernel_launcher")]
        os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
        builtins.get_ipython = lambda: types.SimpleNamespace(kernel=None)
        sys.stdout, sys.stderr = _KernelStream(sys.stdout), _KernelStream(sys.stderr)

    def __exit__(self, *exc: object) -> None:
        import builtins

        del builtins.get_ipython
        os.chdir(self.saved[0])
        sys.argv, sys.stdout, sys.stderr = self.saved[1:]
        shutil.rmtree(self.folder, ignore_errors=True)


def _become_kernel(request: dict[str, Any]) -> None:
    """Turn this fresh child into the kernel ``request`` describes."""
    os.setsid()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update(IMPORT_ENV)

    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # ``random`` reseeds itself after a fork
    argv = request["argv"]
    launcher = sys.modules.get("ipykernel_launcher")
    sys.argv = [getattr(launcher, "__file__", "ipykernel_launcher"), *argv[3:]]
    sys.orig_argv = list(argv)


def main() -> None:
    """Serve forks on the descriptor in ``argv[1]``; in a child, run the kernel."""
    # As ipykernel_launcher does: the folder we started in is no import path.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    import ipykernel_launcher  # noqa: F401 - its file is the kernel's argv[0]

    request = serve(int(sys.argv[1]))
    _become_kernel(request)

    from ipykernel import kernelapp

    # ipykernel read these when the server imported it; they are the child's.
    kernelapp.launch_new_instance(
        parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0),
        interrupt=int(os.environ.get("JPY_INTERRUPT_EVENT") or 0),
    )


if __name__ == "__main__":
    main()
