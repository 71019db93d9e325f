"""The worker's side of a fork server: start it, ask it for kernels, stop it."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from slope.fastkernel.server import PRELOAD_ENV, preload_modules

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
    """The client side of one ``python -m slope.forkserver`` process."""

    def __init__(self, preload: Iterable[str] | None = None) -> None:
        self.preload = list(preload if preload is not None else preload_modules())
        self.env = dict(os.environ)
        self.executable = sys.executable
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.reader = None
        self.ready: dict[str, Any] | None = None

    def start(self) -> ForkServer:
        """Start the server; it imports in the background until the first fork."""
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [self.executable, "-m", "slope.fastkernel.server", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            env={**self.env, PRELOAD_ENV: ",".join(self.preload)},
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self.sock = ours
        self.reader = ours.makefile("r", encoding="utf-8")
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until the imports are done; return what was preloaded."""
        with self.lock:
            if self.ready is None:
                self.sock.settimeout(timeout)
                self.ready = self._receive()
                self.sock.settimeout(None)
        return self.ready

    def fork(self, argv: list[str], cwd: str, env: dict[str, str]) -> int:
        """Fork a kernel that runs ``argv[3:]`` as ipykernel_launcher's arguments."""
        self.wait_ready()
        request = {"op": "fork", "argv": argv, "cwd": cwd, "env": env}
        return self._ask(request)["pid"]

    def poll(self, pid: int) -> int | None:
        """The child's exit code as Popen.poll gives it, or None while it runs."""
        return self._ask({"op": "poll", "pid": pid})["code"]

    def close(self) -> None:
        """Stop the server; kernels it forked were shut down by their managers."""
        if self.process is None:
            return
        if self.sock is not None:
            # shutdown, not only close: the reader holds the socket open too,
            # and the server stops when it reads the end of the stream.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()
            self.reader.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
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


_server: ForkServer | None = None
_server_lock = threading.Lock()


def get_fork_server() -> ForkServer:
    """This process's fork server, started on first use and stopped at exit."""
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = ForkServer().start()
            atexit.register(_server.close)
        return _server


def stop_fork_server() -> None:
    """Stop this process's fork server, if it runs."""
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
