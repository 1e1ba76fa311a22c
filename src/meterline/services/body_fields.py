"""The one check every write body starts with: a JSON object carrying only known fields."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from meterline.services.errors import Invalid

__all__ = ["known_fields"]


def known_fields(raw: object, allowed: Collection[str]) -> Mapping[str, Any]:
    """``raw`` as a mapping, or a 422 naming the first unknown field (a typo in a limit's
    name must not be silently ignored on a billing system)."""
    if not isinstance(raw, Mapping):
        raise Invalid("the body must be a JSON object")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise Invalid(f"unknown field: {unknown[0]}", param=unknown[0], code="unknown_field")
    return raw
