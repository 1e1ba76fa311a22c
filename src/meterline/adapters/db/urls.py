"""Plain database URLs, as users write them, mapped to SQLAlchemy's async drivers.

Users configure ``sqlite:///path.db`` or ``postgresql://user:pass@host/db`` (the forms
every other tool understands); the async driver is an implementation detail we pick here.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

__all__ = ["to_async_url"]

#: Plain driver names → the async drivers we ship with.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_ALREADY_ASYNC = {"sqlite+aiosqlite", "postgresql+asyncpg"}


def to_async_url(url: str | URL) -> URL:
    """``sqlite:///x`` → ``sqlite+aiosqlite:///x``; ``postgres(ql)://…`` → ``postgresql+asyncpg://…``.

    URLs that already name an async driver pass through unchanged; anything else is
    refused, because a sync driver would block the event loop.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    name = parsed.drivername
    if name in _ALREADY_ASYNC:
        return parsed
    if name in _ASYNC_DRIVERS:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS[name])
        if "sslmode" in parsed.query and "ssl" not in parsed.query:
            # libpq spells it sslmode; asyncpg takes the same modes as ``ssl``.
            mode = parsed.query["sslmode"]
            parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
        return parsed
    raise ValueError(
        f"unsupported database URL scheme {name!r}: use sqlite:///path.db or "
        "postgresql://user:pass@host:5432/db"
    )
