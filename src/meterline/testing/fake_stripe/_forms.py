"""Stripe's request encoding: ``application/x-www-form-urlencoded`` with bracketed keys.

The SDK flattens ``{"metadata": {"a": "1"}, "expand": ["x"]}`` into
``metadata[a]=1&expand[0]=x``; the fake turns that back into nested dicts and lists so
its handlers (and test assertions) see the parameters the caller meant.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["parse_form"]

_PART = re.compile(r"\[([^\]]*)\]")


def _path(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    return [head, *_PART.findall("[" + rest)] if rest else [head]


def _listify(node: Any) -> Any:
    """Dicts whose keys are all ``0..n-1`` (or ``''`` appends) become lists."""
    if not isinstance(node, dict):
        return node
    fixed = {k: _listify(v) for k, v in node.items()}
    if fixed and all(k.isdigit() for k in fixed):
        return [fixed[k] for k in sorted(fixed, key=int)]
    return fixed


def parse_form(body: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    appends: dict[int, int] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = _path(key)
        node = root
        for i, part in enumerate(parts):
            if part == "":  # ``expand[]=x``: append
                counter = appends.setdefault(id(node), len(node))
                part = str(counter)
                appends[id(node)] = counter + 1
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return {k: _listify(v) for k, v in root.items()}
