"""Start ``meterline`` server processes on free loopback ports and wait until ready."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["ServerProcess", "free_port", "running_servers", "serving", "serving_in_thread"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"server on {self.port} exited: {err[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server on {self.port} not ready after {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_servers(count: int, env: Mapping[str, str]) -> Iterator[list[ServerProcess]]:
    """``count`` uvicorn processes of the app, configured by ``env`` (METERLINE_*)."""
    # Warnings only unless asked: stderr is a pipe read at exit, and a full pipe (JSON
    # access lines at info) would block the server.
    from meterline.web.http_protocol import HTTP_PROTOCOL

    full_env = {"METERLINE_LOG_LEVEL": "warning", **os.environ, **env}
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            port = free_port()
            proc = subprocess.Popen(  # noqa: S603 (fixed argv, our own app)
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "meterline.web.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--http",
                    HTTP_PROTOCOL,  # as `meterline serve` runs it
                ],
                env=full_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            servers.append(ServerProcess(port, proc))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


@asynccontextmanager
async def serving(app: Any, port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn inside the current event loop; yields its base URL.

    Tests then talk to it over real TCP (official SDKs included) while still sharing the
    app's objects (its container) with the test.
    """
    import uvicorn

    from meterline.web.http_protocol import HTTP_PROTOCOL

    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=HTTP_PROTOCOL,  # as `meterline serve` runs it
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def serving_in_thread(app: Any, *, name: str, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a daemon thread on 127.0.0.1; yields its base URL.

    For fakes of outside services (providers, Stripe) that synchronous tests and other
    event loops talk to; the socket is bound here, so ``port=0`` picks a free port.
    """
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    bound: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"{name} server thread exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not start within 15 s")
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", bound), timeout=5):
            pass
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()
