"""Rate plans: limits, enforcement mode, pricing overrides and the model allow-list."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = ["Limits", "OverageAction", "RatePlan", "model_allowed"]


class OverageAction(StrEnum):
    BLOCK = "block"
    ALERT_ONLY = "alert_only"


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit is optional: ``None`` means unlimited."""

    daily_token_limit: int | None = None
    monthly_token_limit: int | None = None
    daily_request_limit: int | None = None
    monthly_request_limit: int | None = None
    requests_per_minute: int | None = None
    daily_cost_limit_usd: Decimal | None = None
    monthly_cost_limit_usd: Decimal | None = None

    def any(self) -> bool:
        return any(
            v is not None
            for v in (
                self.daily_token_limit,
                self.monthly_token_limit,
                self.daily_request_limit,
                self.monthly_request_limit,
                self.requests_per_minute,
                self.daily_cost_limit_usd,
                self.monthly_cost_limit_usd,
            )
        )


@dataclass(frozen=True, slots=True)
class RatePlan:
    """A tier. ``markup_percentage``/``flat_rate_per_request`` of ``None`` fall back to the
    project default; an empty ``allowed_models`` allows every model."""

    id: str
    name: str
    slug: str = ""
    is_default: bool = False
    overage_action: OverageAction = OverageAction.BLOCK
    limits: Limits = field(default_factory=Limits)
    markup_percentage: Decimal | None = None
    flat_rate_per_request: Decimal | None = None
    allowed_models: tuple[str, ...] = ()


def model_allowed(allowed_models: tuple[str, ...], model: str | None) -> bool:
    """Exact names or shell-style globs (``gpt-4o*``, ``anthropic/*``), case-sensitive.

    A request that names no model cannot be checked against a list and is allowed here;
    the gateway always has a model, the direct API may not.
    """
    if not allowed_models or model is None:
        return True
    return any(
        model == pattern or fnmatch.fnmatchcase(model, pattern) for pattern in allowed_models
    )
