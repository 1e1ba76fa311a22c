"""Money never passes through ``float``: a static check over the money path's source.

Walks the AST of every module under ``src/meterline/domain`` and, when they exist,
``src/meterline/services`` and ``src/meterline/adapters/db``, and fails on a ``float(``
call, a ``float`` annotation or a float literal.

* ``domain`` is checked whole, with no exceptions: it is where money rules live.
* In ``services`` and ``adapters/db`` only *money-related* modules are checked: those that
  import ``decimal`` or ``meterline.domain.money``/``pricing``. There a float annotation
  is allowed only on a name that says it is a duration (``cache_ttl_seconds``,
  ``timeout``…): time is not money, and the name keeps the exception honest.
  ``float(`` calls and float literals are never allowed there.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "meterline"
STRICT_ROOTS = ("domain",)
MONEY_PATH_ROOTS = ("services", "adapters/db")

#: Names whose float annotation is a duration, not an amount.
DURATION_NAME = re.compile(r"(^|_)(ttl|timeout|seconds|interval|delay|backoff)(_|$)")
MONEY_IMPORTS = ("decimal", "meterline.domain.money", "meterline.domain.pricing")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _modules(roots: tuple[str, ...]) -> list[Path]:
    return sorted(p for root in roots if (SRC / root).is_dir() for p in (SRC / root).rglob("*.py"))


def _is_money_related(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name == m or name.startswith(m + ".") for name in names for m in MONEY_IMPORTS):
            return True
    return False


def _mentions_float(annotation: ast.expr | None) -> bool:
    """Whether an annotation names ``float`` (also inside unions, generics and strings)."""
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == "float":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "float":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                inner = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                continue
            if _mentions_float(inner):
                return True
    return False


def _annotated(tree: ast.Module) -> Iterator[tuple[str, ast.expr, int]]:
    """(name, annotation, line) for every annotated argument, return and assignment."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                if arg is not None and arg.annotation is not None:
                    yield arg.arg, arg.annotation, arg.lineno
            if node.returns is not None:
                yield f"{node.name}() return", node.returns, node.lineno
        elif isinstance(node, ast.AnnAssign):
            target = node.target
            name = (
                target.id
                if isinstance(target, ast.Name)
                else target.attr
                if isinstance(target, ast.Attribute)
                else ast.unparse(target)
            )
            yield name, node.annotation, node.lineno


def scan(source: str, path: str, *, durations_allowed: bool) -> list[Finding]:
    tree = ast.parse(source)
    found: list[Finding] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Name) and func.id == "float") or (
                isinstance(func, ast.Attribute) and func.attr == "float"
            ):
                found.append(Finding(path, node.lineno, "float() call"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            found.append(Finding(path, node.lineno, f"float literal {node.value!r}"))
    for name, annotation, line in _annotated(tree):
        if _mentions_float(annotation):
            if durations_allowed and DURATION_NAME.search(name.lower()):
                continue
            found.append(Finding(path, line, f"float annotation on {name!r}"))
    return found


def _findings() -> tuple[list[Finding], list[str]]:
    found: list[Finding] = []
    checked: list[str] = []
    for path in _modules(STRICT_ROOTS):
        rel = str(path.relative_to(SRC))
        checked.append(rel)
        found += scan(path.read_text(encoding="utf-8"), rel, durations_allowed=False)
    for path in _modules(MONEY_PATH_ROOTS):
        source = path.read_text(encoding="utf-8")
        if not _is_money_related(ast.parse(source)):
            continue
        rel = str(path.relative_to(SRC))
        checked.append(rel)
        found += scan(source, rel, durations_allowed=True)
    return found, checked


def test_money_never_passes_through_float() -> None:
    found, checked = _findings()
    assert any(c.startswith("domain/money") for c in checked), checked
    assert not found, "float in the money path:\n" + "\n".join(map(str, found))


# ---------------------------------------------------------------- the scanner itself


@pytest.mark.parametrize(
    "source",
    [
        "x = float('1.5')",
        "x = builtins.float(y)",
        "x = 0.1",
        "x = 1e-9",
        "def f(a: float) -> int: ...",
        "def f(a: int) -> float: ...",
        "def f(*, a: int | float = 0) -> None: ...",
        "def f(a: 'float | None') -> None: ...",
        "def f(a: list[tuple[str, float]]) -> None: ...",
        "def f(a: Optional[float]) -> None: ...",
        "class C:\n    amount: float",
        "class C:\n    amount: 'dict[str, float]'",
        "async def f(*args: float) -> None: ...",
    ],
)
def test_scanner_catches(source: str) -> None:
    assert scan(source, "x.py", durations_allowed=False)


@pytest.mark.parametrize(
    "source",
    [
        "x = Decimal('0.1')",
        "x = 1",
        "isinstance(v, float)",  # refusing floats is the point
        "def f(a: Decimal) -> int: ...",
        "'float' in text",
        "x = 10**-9",
    ],
)
def test_scanner_passes(source: str) -> None:
    assert not scan(source, "x.py", durations_allowed=False)


def test_duration_names_are_the_only_float_exception_outside_domain() -> None:
    source = "def f(*, cache_ttl_seconds: float, timeout: float) -> None: ..."
    assert not scan(source, "x.py", durations_allowed=True)
    assert scan(source, "x.py", durations_allowed=False)
    assert scan("def f(cost: float) -> None: ...", "x.py", durations_allowed=True)
    assert scan("x = 5.0", "x.py", durations_allowed=True)


def test_money_related_detection() -> None:
    assert _is_money_related(ast.parse("from decimal import Decimal"))
    assert _is_money_related(ast.parse("import decimal"))
    assert _is_money_related(ast.parse("from meterline.domain.money import to_nanos"))
    assert not _is_money_related(ast.parse("import time"))
