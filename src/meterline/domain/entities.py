"""The records the services pass around: plain frozen dataclasses, no persistence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = [
    "AlertRecord",
    "ApiKey",
    "EndUser",
    "Environment",
    "Project",
    "UsageEvent",
    "UsageTotals",
    "UserKey",
]


class Environment(StrEnum):
    LIVE = "live"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    organization_id: str
    name: str
    billing_enabled: bool = True
    default_markup_percentage: Decimal = Decimal(0)
    default_flat_rate_per_request: Decimal = Decimal(0)
    currency: str = "USD"
    #: model name → "provider/model" routing for the gateway.
    model_map: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    project_id: str
    environment: Environment
    prefix: str
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class UserKey:
    """Identifies one end user's counters: project, environment and the operator's id."""

    project_id: str
    environment: Environment
    end_user_id: str


@dataclass(frozen=True, slots=True)
class EndUser:
    project_id: str
    environment: Environment
    end_user_id: str
    rate_plan_id: str | None
    blocked: bool = False
    email: str | None = None
    name: str | None = None
    stripe_customer_id: str | None = None
    created_at: datetime | None = None

    @property
    def key(self) -> UserKey:
        return UserKey(self.project_id, self.environment, self.end_user_id)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One metered call, as recorded in the append-only ledger.

    ``provider_cost``/``markup``/``charge`` are ``None`` when the model has no price
    (``priced`` is False): an unpriced call is never billed as $0 by accident.
    ``fingerprint`` is a digest of the client's payload, to tell a replay (same id,
    same payload → duplicate) from a conflict (same id, other payload → 409).
    """

    project_id: str
    environment: Environment
    event_id: str
    end_user_id: str | None
    timestamp: datetime
    model: str | None = None
    provider: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    priced: bool = True
    estimated: bool = False
    provider_cost: Decimal | None = None
    markup: Decimal | None = None
    charge: Decimal | None = None
    #: The per-request flat fee inside ``markup`` (``None`` when unpriced).
    flat_fee: Decimal | None = None
    latency_ms: int | None = None
    status: str = "success"
    metadata: dict[str, Any] = field(default_factory=dict)
    reservation_id: str | None = None
    fingerprint: str = ""
    source: str = "api"
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over a set of events (a window, a day, a user, a model…). Money in ``Decimal``."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    provider_cost: Decimal = Decimal(0)
    markup: Decimal = Decimal(0)
    charge: Decimal = Decimal(0)
    unpriced_requests: int = 0


@dataclass(frozen=True, slots=True)
class AlertRecord:
    project_id: str
    environment: Environment
    kind: str
    end_user_id: str | None
    window: str
    message: str
    created_at: datetime | None = None
    id: str | None = None
