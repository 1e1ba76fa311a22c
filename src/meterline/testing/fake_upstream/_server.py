"""Serving the fake upstream: in a background thread (tests) or in the foreground (demos)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from meterline.testing.server import serving_in_thread

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
    with serving_in_thread(create_app(log), name="fake-upstream", port=port) as url:
        yield FakeUpstream(url, log)


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
