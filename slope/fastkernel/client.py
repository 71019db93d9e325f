"""The worker's side of a fork server: start it, ask it for kernels, stop it."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slope.fastkernel.preload import preload_modules

READY_TIMEOUT_S = 120.0
# Set per kernel by the launcher; any other difference changes what an
# import may have read, and the kernel then starts cold.
PER_KERNEL_ENV = {"JPY_PARENT_PID", "JPY_SESSION_NAME", "PYTHONEXECUTABLE"}


class ForkServerError(RuntimeError):
    """The fork server did not start, or stopped answering."""


def unavailable_reason() -> str | None:
    """Why this platform has no fork server, or None when it may have one."""
    if not sys.platform.startswith("linux"):
        return f"fork servers run on Linux only, not {sys.platform}"
    if not hasattr(os, "fork"):
        return "this Python has no os.fork"
    return None


class ForkServer:
    """The client side of one ``python -m slope.fastkernel.server`` process.

    Either this process starts the server (:meth:`start`) and owns it, or it
    connects to one that another process started (:meth:`connect`): a run's
    workers share the runner's.
    """

    def __init__(
        self, preload: Iterable[str] | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.preload = list(
            preload if preload is not None else preload_modules(self.env)
        )
        self.executable = sys.executable
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.reader = None
        self.ready: dict[str, Any] | None = None
        self.path: str | None = None  # where other processes may connect
        self.owns_path = False

    def start(self, listen: str | None = None, log: Path | None = None) -> ForkServer:
        """Start the server; it imports in the background until the first fork.

        With ``listen``, a Unix socket path, other processes may
        :meth:`connect` to the server there. ``log`` receives what the server
        and its kernels write to stderr (by default, this process's stderr);
        what they write to the stdout they inherit is then dropped, as a
        worker drops its cold kernels' (papermill shows their output).
        """
        ours, theirs = socket.socketpair()
        passed = [theirs]
        if listen is not None:
            # Bound here, so that whoever is told the path may connect at once.
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(listen)
            listener.listen(64)
            passed.append(listener)
        command = [
            self.executable,
            "-m",
            "slope.fastkernel.server",
            str(theirs.fileno()),
            ",".join(self.preload),
            *(str(s.fileno()) for s in passed[1:]),
        ]
        with contextlib.ExitStack() as stack:
            stderr = None
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                stderr = stack.enter_context(open(log, "ab"))
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if log is not None else None,
                stderr=stderr,
                env=self.env,
                pass_fds=[s.fileno() for s in passed],
                start_new_session=True,  # Ctrl-C is for the run; the run stops us
            )
        for sock in passed:
            sock.close()
        self.path = listen
        self.owns_path = listen is not None
        self._use(ours)
        return self

    @classmethod
    def connect(cls, path: str) -> ForkServer:
        """Connect to a server another process started with ``listen=path``.

        Raises
        ------
        ForkServerError
            When nothing listens there.
        """
        server = cls(preload=[])
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as err:
            sock.close()
            raise ForkServerError(f"no fork server at {path}: {err}") from err
        server.path = path
        server._use(sock)
        return server

    @property
    def pid(self) -> int | None:
        if self.ready is not None:
            return self.ready.get("pid")
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        if self.process is None:
            return self.sock is not None  # another process's: alive until it fails
        return self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until the imports are done; return what was preloaded."""
        with self.lock:
            if self.ready is None:
                self.sock.settimeout(timeout)
                try:
                    self.ready = self._receive()
                except TimeoutError as err:
                    raise ForkServerError(
                        f"the fork server was not ready in {timeout:.0f} s"
                    ) from err
                finally:
                    self.sock.settimeout(None)
                # The environment the server imported with is what kernels match.
                self.env = self.ready.get("env", self.env)
        return self.ready

    def fork(
        self, argv: list[str], cwd: str, env: dict[str, str], hold: bool = False
    ) -> int:
        """Fork a kernel that runs ``argv[3:]`` as ipykernel_launcher's arguments.

        With ``hold``, the kernel initializes and then waits for :meth:`go`.
        """
        request = {"op": "fork", "argv": argv, "cwd": cwd, "env": env, "hold": hold}
        return self._ask(request)["pid"]

    def go(self, pid: int, cwd: str, env: dict[str, str]) -> None:
        """Start a held kernel in ``cwd`` with ``env``, as if forked with them."""
        self._ask({"op": "go", "pid": pid, "cwd": cwd, "env": env})

    def poll(self, pid: int) -> int | None:
        """The child's exit code as Popen.poll gives it, or None while it runs."""
        return self._ask({"op": "poll", "pid": pid})["code"]

    def close(self) -> None:
        """Disconnect; the server kills what we forked and still runs.

        The server we started also stops, with every kernel it forked.
        """
        if self.process is not None and not self._has_said_ready():
            self.process.kill()  # still importing: it forked nothing, and would
            # not read the end of the stream for seconds
        if self.sock is not None:
            # shutdown, not only close: the reader holds the socket open too,
            # and the server notices the end of the stream only then.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.reader.close()
            self.sock = None
        if self.owns_path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.owns_path = False
        if self.process is None:
            return
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _has_said_ready(self) -> bool:
        """Whether the ready line came, read or not; never waits for it."""
        if self.ready is not None or self.sock is None:
            return self.ready is not None
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def _use(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("r", encoding="utf-8")

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.wait_ready()  # the ready line comes before any answer
        with self.lock:
            try:
                self.sock.sendall((json.dumps(request) + "\n").encode())
                return self._receive()
            except OSError as err:
                raise ForkServerError(
                    f"the fork server stopped answering: {err}"
                ) from err

    def _receive(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            code = self.process.poll() if self.process else None
            raise ForkServerError(f"the fork server ended (exit code {code})")
        answer = json.loads(line)
        if "error" in answer:
            raise ForkServerError(answer["error"])
        return answer


SHARED_SERVER_ENV = "SLOPE_FORK_SERVER"  # a run's server, for its workers to share
_server: ForkServer | None = None
_shared_path: str | None = None
_server_lock = threading.Lock()


def share_fork_server(path: str | None) -> None:
    """Let this process's kernels come from the server listening at ``path``.

    Without it (or with None), the process starts a fork server of its own.
    """
    global _shared_path
    _shared_path = path


def get_fork_server() -> ForkServer:
    """This process's fork server: the shared one, or its own, started on first use.

    Raises
    ------
    ForkServerError
        When the shared server cannot be reached.
    """
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            if _shared_path is not None:
                _server = ForkServer.connect(_shared_path)
            else:
                _server = ForkServer().start()
            atexit.register(_server.close)
        return _server


def stop_fork_server() -> None:
    """Stop this process's fork server, or leave the shared one."""
    global _server
    with _server_lock:
        if _server is not None:
            _server.close()
            _server = None


def fast_path_refusal(
    argv: list[str], env: dict[str, str], server: ForkServer
) -> str | None:
    """Why the server cannot start this kernel, or None when it can."""
    if len(argv) < 3 or argv[1:3] != ["-m", "ipykernel_launcher"]:
        return f"the kernel's command is not ipykernel_launcher: {' '.join(argv)}"
    if os.path.normpath(os.path.abspath(argv[0])) != os.path.normpath(
        server.executable
    ):
        return f"the kernel runs {argv[0]}, the fork server {server.executable}"
    changed = sorted(
        key
        for key in set(env) | set(server.env)
        if env.get(key) != server.env.get(key) and key not in PER_KERNEL_ENV
    )
    if changed:
        return (
            f"the kernel's environment differs from the fork server's in {changed[0]}"
        )
    return None


class ForkedProcess:
    """What Popen would be for a kernel the fork server started."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.server = server
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.server.poll(self.pid)
            except ForkServerError:
                self.returncode = -9  # the server, and with it the kernel, is gone
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
            time.sleep(0.005)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        self.send_signal(9)
