"""The fork server itself: ``python -m slope.fastkernel.server FD MODULES [LISTEN]``.

It imports ipykernel and ``MODULES`` (comma-separated), starts no thread, and
then answers requests, one JSON line each, on the socket ``FD`` and on any
connection made to the listening Unix socket ``LISTEN`` (a descriptor too):
``fork`` (reply: the child's pid), ``poll`` (reply: the child's exit code,
or null while it runs) and ``go``. A child forked with ``hold`` initializes
its kernel, then waits for ``go`` to name its folder and environment before
it answers anyone: the kernel of an attempt to come.

The server reaps its children, so none is left a zombie, kills those whose
connection closed, and ends when ``FD`` closes, as it does when the process
that started it dies. A child returns from :func:`serve` with its request
and becomes the kernel, as ``python -m ipykernel_launcher`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from slope.fastkernel.preload import KERNEL_MODULES

IMPORT_ENV: dict[str, str] = {}  # what the preloaded imports added to os.environ
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def serve(
    fd: int, modules: list[str], env: dict[str, str], listen: int | None = None
) -> dict[str, Any]:
    """Preload, then fork on request; return only in a child, with its request.

    ``fd`` is the connection of the process that started the server; ``listen``
    a listening Unix socket where other processes (a run's workers) may
    connect too. ``env`` is the environment the server started with: the one its
    kernels must have. Each connection gets the ready line first, then asks
    for forks and polls, one request at a time. When a connection closes, the kernels it
    asked for and that still run are killed; when the first one closes, all
    are, and the server ends.
    """
    import selectors
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner decides when we stop
    owner = socket.socket(fileno=fd)
    # Bound by the owner: workers that connect during the imports wait in its backlog.
    listener = None if listen is None else socket.socket(fileno=listen)
    ready = {**_preload(modules), "pid": os.getpid(), "env": env}
    hello = (json.dumps(ready) + "\n").encode()
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, bytes] = {}  # each connection's unfinished line
    children: dict[int, socket.socket] = {}  # running kernels, by who asked
    held: dict[int, int] = {}  # kernels waiting for their "go": our end of a pipe
    exits: dict[int, int] = {}

    def welcome(conn: socket.socket) -> None:
        conn.sendall(hello)
        pending[conn] = b""
        selector.register(conn, selectors.EVENT_READ)

    def drop(conn: socket.socket) -> None:
        selector.unregister(conn)
        pending.pop(conn, None)
        conn.close()
        _reap(exits)
        for pid, asker in list(children.items()):
            if pid not in exits and (asker is conn or conn is owner):
                # The kernel, even before its setsid(), then what it started.
                for kill in (os.kill, os.killpg):
                    with contextlib.suppress(OSError):
                        kill(pid, signal.SIGKILL)

    try:
        welcome(owner)
        if listener is not None:
            selector.register(listener, selectors.EVENT_READ)
        while owner in pending:
            for key, _ in selector.select():
                conn = key.fileobj
                if conn is listener:
                    welcome(listener.accept()[0])
                    continue
                try:
                    data = conn.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    drop(conn)
                    continue
                pending[conn] += data
                while b"\n" in pending[conn]:
                    line, pending[conn] = pending[conn].split(b"\n", 1)
                    request = json.loads(line)
                    _reap(exits)
                    if request["op"] == "fork":
                        hold = os.pipe() if request.get("hold") else None
                        pid = os.fork()
                        if pid == 0:
                            selector.close()
                            for open_socket in [*pending, listener]:
                                if open_socket is not None:
                                    open_socket.close()
                            for fd in [*held.values(), *(hold or ())[1:]]:
                                os.close(fd)
                            signal.signal(signal.SIGINT, signal.default_int_handler)
                            return {**request, "hold": hold[0] if hold else None}
                        children[pid] = conn
                        if hold:
                            os.close(hold[0])
                            held[pid] = hold[1]
                        answer = {"pid": pid}
                    elif request["op"] == "go":
                        answer = _go(held.pop(request["pid"], None), request)
                    else:
                        pid = request["pid"]
                        code = exits[pid] if pid in exits else _still(pid)
                        if code is not None:
                            children.pop(pid, None)
                        answer = {"code": code}
                    conn.sendall((json.dumps(answer) + "\n").encode())
    except OSError:
        pass
    os._exit(0)


def _go(fd: int | None, request: dict[str, Any]) -> dict[str, Any]:
    """Tell a held kernel where and with what environment to run; then it starts."""
    if fd is None:
        return {"error": f"no kernel {request['pid']} waits for its go"}
    try:
        line = json.dumps({"cwd": request["cwd"], "env": request["env"]}) + "\n"
        os.write(fd, line.encode())
    except OSError as err:
        return {"error": f"the kernel {request['pid']} ended before its go: {err}"}
    finally:
        os.close(fd)
    return {"pid": request["pid"]}


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


def _preload(modules: list[str]) -> dict[str, Any]:
    import importlib

    before = dict(os.environ)
    started = time.perf_counter()
    loaded, failed = [], {}
    with _as_in_a_kernel():
        for name in [*KERNEL_MODULES, *modules]:
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


def _wait_for_go(fd: int) -> dict[str, Any]:
    """Block until the server passes on our attempt's folder and environment."""
    with os.fdopen(fd, "rb") as pipe:
        line = pipe.readline()
    if not line:
        os._exit(0)  # never used: the server let go of us, or ended
    return json.loads(line)


def _move_in(app: Any, held_env: dict[str, str], go: dict[str, Any]) -> None:
    """Give a held kernel the folder and environment its attempt starts it with.

    Nothing ran in it yet; only what IPython noted of its folder and
    environment while it initialized is told again. What the kernel itself
    set while it initialized (``PAGER``, ``MPLBACKEND``, ...) stays.
    """
    os.chdir(go["cwd"])
    for name in held_env.keys() - go["env"].keys():
        os.environ.pop(name, None)
    os.environ.update((k, v) for k, v in go["env"].items() if held_env.get(k) != v)
    shell = app.shell
    shell.starting_dir = os.getcwd()
    shell.history_manager.dir_hist[:] = [os.getcwd()]  # the notebook's _dh
    session = os.environ.get("JPY_SESSION_NAME")
    if session:
        shell.user_ns["__session__"] = session
    else:
        shell.user_ns.pop("__session__", None)


def main() -> None:
    """Serve forks as ``argv`` says; in a child, run the kernel."""
    env = dict(os.environ)
    # As ipykernel_launcher does: the folder we started in is no import path.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    import ipykernel_launcher  # noqa: F401 - its file is the kernel's argv[0]

    fd, modules, listen = sys.argv[1], sys.argv[2], sys.argv[3:]
    modules = [m for m in modules.split(",") if m]
    request = serve(int(fd), modules, env, *map(int, listen))
    _become_kernel(request)

    from ipykernel import kernelapp

    # As launch_new_instance does, with a pause between the two steps for a
    # held kernel. ipykernel read these when the server imported it.
    app = kernelapp.IPKernelApp.instance(
        parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0),
        interrupt=int(os.environ.get("JPY_INTERRUPT_EVENT") or 0),
    )
    app.initialize()
    if request["hold"] is not None:
        _move_in(app, request["env"], _wait_for_go(request["hold"]))
    app.start()


if __name__ == "__main__":
    main()
