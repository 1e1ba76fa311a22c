"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile: top functions by self and
by inclusive time, and the share of a few hot-path buckets.

    python bench/profile_summary.py bench/raw/profile_meterline_embedded.collapsed [--top 25]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        stacks.append((frames, int(count)))
    return stacks


#: Hot-path buckets, matched against file paths of any frame in a stack (first match wins,
#: innermost frame first) to say where the time goes in plain words.
BUCKETS = [
    ("argon2 / key hashing", ("argon2", "hashlib", "_hash")),
    ("SQL: sqlalchemy core/orm", ("sqlalchemy/",)),
    ("SQLite driver (aiosqlite/sqlite3)", ("aiosqlite", "sqlite3")),
    ("PostgreSQL driver (asyncpg)", ("asyncpg",)),
    ("Redis client", ("redis/",)),
    ("upstream HTTP client (aiohttp)", ("aiohttp/", "multidict/", "yarl/")),
    ("upstream HTTP client (httpx/httpcore)", ("httpx/", "httpcore/", "h11/")),
    ("pydantic", ("pydantic",)),
    ("prices (genai-prices)", ("genai_prices",)),
    ("FastAPI/Starlette routing & deps", ("fastapi/", "starlette/")),
    ("uvicorn / httptools / event loop", ("uvicorn/", "httptools", "uvloop", "asyncio/")),
    ("JSON (json/orjson)", ("json/", "orjson")),
    ("logging / structlog", ("logging/", "structlog")),
    ("meterline code", ("meterline/",)),
]


def bucket_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(path: Path, top: int = 25) -> str:
    stacks = load(path)
    total = sum(c for _, c in stacks) or 1
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        self_t[_short(frames[-1])] += count
        # Each frame once per stack, in stack order (a set's order would change between
        # runs, and with it the order of ties in the report).
        for f in dict.fromkeys(_short(f) for f in frames):
            incl[f] += count
        buckets[bucket_of(frames)] += count
    out = [
        f"{total} samples. `Runner.run` self time is C code under the uvloop event loop "
        "(httptools parsing, socket I/O, callbacks); `_connection_worker_thread` self time is "
        "aiosqlite's thread; asyncpg's share is its protocol code. Work inside "
        "SQLAlchemy's greenlets and some coroutine frames is sampled without its callers, so "
        "the inclusive list below undercounts the route handlers; the bucket table (by "
        "innermost frame) is the reliable split.",
        "",
        "| bucket (innermost matching frame) | share |",
        "|---|---:|",
    ]
    for name, c in buckets.most_common():
        out.append(f"| {name} | {100 * c / total:.1f}% |")
    out += ["", f"| top {top} by self time | self |", "|---|---:|"]
    for name, c in self_t.most_common(top):
        out.append(f"| `{name}` | {100 * c / total:.1f}% |")
    out += ["", f"| top {top} meterline functions by inclusive time | inclusive |", "|---|---:|"]
    ours = [(n, c) for n, c in incl.most_common() if "meterline/" in n]
    for name, c in ours[:top]:
        out.append(f"| `{name}` | {100 * c / total:.1f}% |")
    return "\n".join(out)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("path", type=Path)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    print(summarise(a.path, a.top))
