"""Validating one usage event as a client sent it (already JSON-decoded with decimals).

Everything a client can get wrong is caught here and named, so that the event fails
alone with a clear message and nothing is written for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from meterline.domain.money import InvalidMoney, money_str, parse_money
from meterline.services.errors import Invalid

__all__ = ["MAX_FUTURE", "EventInput", "canonical_json", "parse_event"]

MAX_FUTURE = timedelta(minutes=5)
MAX_TOKENS = 10**12
MAX_ID = 256
MAX_METADATA_BYTES = 16_384
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_CONTROL = re.compile("[\x00-\x1f]")


@dataclass(frozen=True, slots=True)
class EventInput:
    end_user_id: str
    model: str | None
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    event_id: str | None
    timestamp: datetime | None
    latency_ms: int | None
    status: str
    metadata: dict[str, Any] = field(default_factory=dict)
    reservation_id: str | None = None

    def fingerprint(self) -> str:
        """Digest of the payload as the client sent it, to tell replays from conflicts."""
        canonical = {
            "end_user_id": self.end_user_id,
            "model": self.model,
            "provider": self.provider,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": None if self.cost_usd is None else money_str(self.cost_usd),
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
            "latency_ms": self.latency_ms,
            "status": self.status,
            "metadata": self.metadata,
            "reservation_id": self.reservation_id,
        }
        return hashlib.sha256(canonical_json(canonical)).hexdigest()


#: orjson refuses what it would write unlike ``default=str`` (datetimes, dataclasses,
#: subclasses of str/int/dict/list), so those take the stdlib path.
_STDLIB_TYPES_ONLY = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def canonical_json(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)``, the
    fingerprint's text since the first release, byte for byte, ten times faster.

    orjson writes the same text whenever it needs no escape: plain printable ASCII,
    integers within 64 bits. Anything else (an escape, a non-ASCII character, DEL, a huge
    integer, a value only ``default=str`` can write) takes the stdlib path, so stored
    fingerprints keep matching their replays.
    """
    try:
        fast = orjson.dumps(value, option=_STDLIB_TYPES_ONLY)
    except TypeError:  # orjson.JSONEncodeError: too big an integer, an unknown type
        fast = None
    if fast is not None and fast.isascii() and b"\\" not in fast and b"\x7f" not in fast:
        return fast
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _text(
    raw: Mapping[str, Any], name: str, *, required: bool = False, max_len: int = MAX_ID
) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise Invalid(f"{name} is required", param=name, code="missing_field")
        return None
    if not isinstance(value, str) or not value or value.isspace():
        raise Invalid(f"{name} must be a non-empty string", param=name)
    if len(value) > max_len:
        raise Invalid(f"{name} must be at most {max_len} characters", param=name)
    # A printable string has no control character: the scan in C answers most ids.
    if not value.isprintable() and _CONTROL.search(value):
        raise Invalid(f"{name} must not contain control characters", param=name)
    return value


def _count(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise Invalid(f"{name} must be a whole number", param=name)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int):
        raise Invalid(f"{name} must be a whole number", param=name)
    if value < 0 or value > MAX_TOKENS:
        raise Invalid(f"{name} must be between 0 and {MAX_TOKENS}", param=name)
    return value


def _timestamp(value: Any, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(int(value), tz=UTC)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError, ArithmeticError):
        raise Invalid(
            "timestamp must be an ISO 8601 string or Unix seconds", param="timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now + MAX_FUTURE:
        raise Invalid("timestamp is more than 5 minutes in the future", param="timestamp")
    if moment < _EARLIEST:
        raise Invalid("timestamp is before 2000-01-01", param="timestamp")
    return moment


def _jsonable(value: Any) -> Any:
    """Metadata is free-form. JSON numbers arrive as ``Decimal`` (nothing is parsed through
    float); whole ones are stored as integers, fractional ones as their exact decimal text."""
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def parse_event(raw: object, *, now: datetime, default_event_id: str | None = None) -> EventInput:
    if not isinstance(raw, Mapping):
        raise Invalid("each event must be a JSON object")
    end_user_id = _text(raw, "end_user_id", required=True)
    assert end_user_id is not None
    prompt = _count(raw, "prompt_tokens") or 0
    completion = _count(raw, "completion_tokens") or 0
    total = _count(raw, "total_tokens")
    if total is None:
        total = prompt + completion
    elif total < prompt + completion:
        raise Invalid(
            "total_tokens must be at least prompt_tokens + completion_tokens",
            param="total_tokens",
        )
    cost: Decimal | None = None
    if raw.get("cost_usd") is not None:
        try:
            cost = parse_money(raw["cost_usd"], field="cost_usd")
        except InvalidMoney as exc:
            raise Invalid(str(exc), param="cost_usd") from None
    metadata = raw.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise Invalid("metadata must be a JSON object", param="metadata")
    if metadata:
        metadata = _jsonable(metadata)
    if metadata and len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
        raise Invalid(f"metadata must be at most {MAX_METADATA_BYTES} bytes", param="metadata")
    latency = _count(raw, "latency_ms")
    return EventInput(
        end_user_id=end_user_id,
        model=_text(raw, "model", max_len=200),
        provider=_text(raw, "provider", max_len=100),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cost_usd=cost,
        event_id=_text(raw, "event_id") or default_event_id,
        timestamp=_timestamp(raw.get("timestamp"), now),
        latency_ms=latency,
        status=_text(raw, "status", max_len=50) or "success",
        metadata=metadata,
        reservation_id=_text(raw, "reservation_id"),
    )
