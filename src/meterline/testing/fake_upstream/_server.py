"""Serving the fake upstream: in a background thread (tests) or in the foreground (demos)."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from ._app import create_app
from ._core import RecordedRequest, RequestLog


@dataclass
class FakeUpstream:
    """A running fake upstream: where it listens and what it received."""

    url: str
    requests: RequestLog = field(default_factory=RequestLog)

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def clear(self) -> None:
        self.requests.clear()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return self.requests.for_path(path)


@contextmanager
def running_fake_upstream(port: int = 0) -> Iterator[FakeUpstream]:
    """Serve the fake upstream on 127.0.0.1 (``port=0``: a free port) in a background thread."""
    log = RequestLog()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(log),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-upstream", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("fake upstream server thread exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("fake upstream did not start within 15 s")
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", bound_port), timeout=5):
            pass
        yield FakeUpstream(f"http://127.0.0.1:{bound_port}", log)
    finally:
        server.should_exit = True
        thread.join(5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m meterline.testing.fake_upstream",
        description="Serve a fake OpenAI + Anthropic upstream (see the module docstring).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--fast", action="store_true", help="accepted for scripts; the default is already lean"
    )
    args = parser.parse_args(argv)
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "info",
        "access_log": args.access_log,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
    }
    if args.workers > 1:
        uvicorn.run(
            "meterline.testing.fake_upstream._app:create_app",
            factory=True,
            workers=args.workers,
            **common,
        )
    else:
        uvicorn.run(create_app(), **common)
