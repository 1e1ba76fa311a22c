"""Structured JSON logs (structlog) for the whole process, with secrets scrubbed.

Every record — ours, uvicorn's, SQLAlchemy's — goes through one formatter: a JSON line
with a UTC timestamp, the level, the logger, the event and the request id bound by the
web middleware (``structlog.contextvars``), so a response's ``x-meterline-request-id``
finds its log lines. A billing gateway handles API keys, provider keys and Stripe
secrets on every request, so the last step before rendering scrubs anything shaped like
one, in messages and tracebacks alike: a leak through a log line is still a leak.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import orjson
import structlog

__all__ = ["REDACTED", "configure_logging", "redact_secrets", "scrub"]

REDACTED = "[redacted]"

#: Shapes of secrets: our project keys, OpenAI/Anthropic-style keys, Stripe keys and
#: webhook secrets, bearer tokens, and ``key=value`` pairs with a secret-sounding name.
_SECRET = re.compile(
    r"mk_(?:live|test)_[A-Za-z0-9_\-]+"
    r"|\bsk-[A-Za-z0-9_\-]{6,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+"
    r"|\bwhsec_[A-Za-z0-9]+"
    r"|(?i:bearer)\s+[A-Za-z0-9_\-\.=]+"
)
_SECRET_KEYS = frozenset(
    {"authorization", "api_key", "apikey", "x-api-key", "password", "secret", "token",
     "secret_key", "stripe_secret_key", "access_token", "refresh_token", "cookie"}
)  # fmt: skip


def scrub(text: str) -> str:
    """``text`` with every secret-shaped substring replaced."""
    return _SECRET.sub(REDACTED, text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in _SECRET_KEYS else _clean(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: drop secret-named fields, scrub secret-shaped strings."""
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(event_dict[key])
    return event_dict


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


class _LineWriter:
    """A structlog logger that writes each rendered line to the stdlib handler's stream,
    under the handler's lock: structlog's own lines (the per-request access line) skip
    the ``logging`` machinery, which costs several times the rendering itself, and
    still interleave whole lines with records from ``logging``."""

    def __init__(self, handler: logging.StreamHandler[IO[str]], name: str) -> None:
        self._handler = handler
        self.name = name  # read by ``add_logger_name``

    def msg(self, message: str) -> None:
        handler = self._handler
        handler.acquire()
        try:
            handler.stream.write(message + "\n")
            handler.flush()
        finally:
            handler.release()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(level: str = "info", *, stream: IO[str] | None = None) -> logging.Handler:
    """Route all logging through one JSON formatter on ``stream`` (stderr by default).

    Replaces the root handlers and uvicorn's own, and silences uvicorn's access log: the
    web middleware writes one access line per request, with its request id. Returns the
    installed handler (tests capture through it).
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[Any] = [
        structlog.processors.format_exc_info,
        redact_secrets,
        structlog.processors.JSONRenderer(serializer=_dumps),
    ]
    handler = logging.StreamHandler(stream or sys.stderr)
    structlog.configure(
        processors=[*shared, *rendering],
        logger_factory=lambda name="meterline", *_: _LineWriter(handler, name),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # uvicorn decides per connection whether to write access lines by
    # ``getLogger("uvicorn.access").hasHandlers()``, which looks up the ancestors too:
    # propagating to the root handler would turn its access log on again, and it then
    # formats the client address and path of every response before the level drops
    # the line (about 2 % of a check-quota call's CPU).
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.setLevel(logging.WARNING)
    return handler
