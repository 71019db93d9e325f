"""The kernel manager papermill receives: kernels come from the fork server.

:class:`ForkProvisioner` is jupyter_client's LocalProvisioner with one change:
where that one starts ``python -m ipykernel_launcher``, this one asks the fork
server for a child, and falls back to the LocalProvisioner's launch, with the
reason, when the server cannot serve that kernel. Signals go to the child's
session as they would to a cold kernel's.

Each time it starts a kernel, it also forks a spare one, held: it initializes
while the attempt runs, then waits. The next attempt that would start the
same kernel (same command, same environment) tells it its folder and
environment and starts it; any other discards it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from slope.fastkernel.client import (
    ForkedProcess,
    ForkServer,
    ForkServerError,
    fast_path_refusal,
)

RECONNECT_MS = 10  # how often a socket retries a kernel that has not bound yet


def _make_provisioner_class():
    from jupyter_client.provisioning import LocalProvisioner

    class ForkProvisioner(LocalProvisioner):
        """A LocalProvisioner whose kernel process comes from the fork server."""

        server: ForkServer | None = None
        report: dict[str, Any] | None = None

        async def launch_kernel(self, cmd: list[str], **kwargs: Any):
            env = dict(kwargs.get("env") or os.environ)
            cwd = str(kwargs.get("cwd") or Path.cwd())
            reason = fast_path_refusal(cmd, env, self.server)
            if reason is not None:
                self.report.update(path="cold", reason=reason)
                return await super().launch_kernel(cmd, **kwargs)

            env["JPY_PARENT_PID"] = str(self.server.pid)
            spare = _take_spare(self.server, cmd, env)
            if spare is not None:
                self.server.go(spare.pid, cwd, env)
                pid, self.connection_info = spare.pid, spare.connection_info
                self.spare_file = spare.connection_file
            else:
                pid = self.server.fork(cmd, cwd, env)
            self.process = ForkedProcess(pid, self.server)
            self.pid = self.pgid = pid  # the child called setsid()
            self.cwd = cwd
            self.report.update(path="fork", reason=None, spare=spare is not None)
            # The next attempt's kernel initializes while this one runs; even
            # the fork waits on no one.
            threading.Thread(
                target=_make_spare,
                args=(self.server, cmd, env, self.connection_info),
                name="slope-spare-kernel",
                daemon=True,
            ).start()
            return self.connection_info

        async def cleanup(self, restart: bool = False) -> None:
            await super().cleanup(restart=restart)
            if getattr(self, "spare_file", None):
                Path(self.spare_file).unlink(missing_ok=True)

        async def wait(self) -> int | None:
            if isinstance(self.process, ForkedProcess):
                import asyncio

                while self.process.poll() is None:
                    await asyncio.sleep(0.005)
            return await super().wait()

    return ForkProvisioner


class _Spare:
    """A kernel forked ahead of its attempt: initialized, waiting for its go."""

    def __init__(
        self,
        server: ForkServer,
        pid: int,
        argv: list[str],
        env: dict[str, str],
        connection_info: dict[str, Any],
        connection_file: str,
    ) -> None:
        self.server = server
        self.pid = pid
        self.argv = argv
        self.env = env
        self.connection_info = connection_info
        self.connection_file = connection_file

    def fits(self, server: ForkServer, argv: list[str], env: dict[str, str]) -> bool:
        """Whether this kernel is the one ``argv`` and ``env`` would start."""
        return (
            server is self.server
            and _any_file(argv) == _any_file(self.argv)
            and env == self.env
        )

    def discard(self) -> None:
        ForkedProcess(self.pid, self.server).kill()
        Path(self.connection_file).unlink(missing_ok=True)


_spare: _Spare | None = None
_spare_lock = threading.Lock()
_spare_folder: str | None = None


def _take_spare(server: ForkServer, argv: list[str], env: dict[str, str]):
    """This process's spare kernel, when it is the one to start; else None."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is None:
        return None
    if not spare.fits(server, argv, env):
        spare.discard()
        return None
    return spare


def _make_spare(
    server: ForkServer, argv: list[str], env: dict[str, str], info: dict[str, Any]
) -> None:
    """Fork a held kernel like this one, with its own ports, key and file."""
    global _spare, _spare_folder
    from jupyter_client.connect import write_connection_file
    from jupyter_client.session import new_id_bytes

    if _spare_folder is None:
        # Where a held kernel waits, and its connection file: not a run's folder.
        _spare_folder = tempfile.mkdtemp(prefix="slope-kernels-")
        atexit.register(shutil.rmtree, _spare_folder, ignore_errors=True)
    name = os.path.join(_spare_folder, f"kernel-{uuid.uuid4()}.json")
    name, written = write_connection_file(
        name,
        ip=info["ip"],
        key=new_id_bytes(),
        transport=info["transport"],
        signature_scheme=info["signature_scheme"],
        kernel_name=info.get("kernel_name", ""),
    )
    spare_argv = [name if arg == _connection_file(argv) else arg for arg in argv]
    try:
        pid = server.fork(spare_argv, _spare_folder, env, hold=True)
    except ForkServerError:
        Path(name).unlink(missing_ok=True)
        return
    connection_info = {**written, "key": written["key"].encode()}
    spare = _Spare(server, pid, spare_argv, env, connection_info, name)
    with _spare_lock:
        spare, _spare = _spare, spare
    if spare is not None:
        spare.discard()


def _connection_file(argv: list[str]) -> str | None:
    return argv[argv.index("-f") + 1] if "-f" in argv[:-1] else None


def _any_file(argv: list[str]) -> list[str]:
    """``argv`` without the name of its connection file, to compare kernels."""
    name = _connection_file(argv)
    return ["{connection_file}" if arg == name else arg for arg in argv]


def _make_client_class():
    import zmq
    from jupyter_client.asynchronous import AsyncKernelClient

    class ForkKernelClient(AsyncKernelClient):
        """jupyter_client's client, without its fixed 0.2 s of IOPub silence.

        After the kernel_info reply, jupyter_client waits until IOPub has been
        quiet for 0.2 s. One IOPub message is proof enough that the channel is
        connected, and nbclient matches every message to its request, so the
        ones still on their way (the kernel's status) do no harm.
        """

        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            from queue import Empty

            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    msg = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    msg = None
                if msg is not None and msg["msg_type"] == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Kernel didn't respond in {timeout:.0f} seconds"
                    )

        wait_for_ready = _async_wait_for_ready

        def _context_default(self):
            # The client makes its own context, not the manager's: its sockets
            # connect before the kernel binds too, and would retry only every
            # 100 ms, zmq's default.
            context = super()._context_default()
            context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
            return context

    return ForkKernelClient


def fork_kernel_manager_class(server: ForkServer, report: dict[str, Any]) -> type:
    """An AsyncKernelManager class whose kernels the fork server starts.

    ``report`` receives ``path`` (``fork`` or ``cold``) and ``reason``.
    """
    from jupyter_client.manager import AsyncKernelManager

    provisioner_class = _make_provisioner_class()
    client_class = _make_client_class()

    class ForkKernelManager(AsyncKernelManager):
        client_factory = client_class

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            import zmq

            super().__init__(*args, **kwargs)
            # Our sockets connect before the kernel binds; retry every 10 ms, not 100.
            self.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)

        async def _async_pre_start_kernel(self, **kw: Any):
            if self.provisioner is None:
                self.kernel_id = self.kernel_id or kw.pop(
                    "kernel_id", str(uuid.uuid4())
                )
                self.provisioner = provisioner_class(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )
                self.provisioner.server = server
                self.provisioner.report = report
            return await super()._async_pre_start_kernel(**kw)

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            # A forked kernel's end is known at once; no need to nap 0.1 s.
            await super()._async_wait(pollinterval=0.005)

    return ForkKernelManager
