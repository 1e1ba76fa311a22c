"""The seams services depend on. Adapters implement them; tests run one contract suite
against every implementation (memory/SQLite/PostgreSQL, memory/Redis).

Stripe's ``Payments`` and ``StripeStore`` are declared in ``services/stripe_ports.py``
for now; this module is near its size limit and is due to become a package, one module
per seam, with those two moved in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from meterline.domain.entities import (
    AlertRecord,
    ApiKey,
    EndUser,
    Environment,
    Project,
    UsageEvent,
    UsageTotals,
    UserKey,
)
from meterline.domain.invoices import Invoice, InvoiceStatus, LineUsage
from meterline.domain.limits import Decision, UsageSnapshot
from meterline.domain.plans import Limits, RatePlan

__all__ = [
    "Accounts",
    "AdminAccounts",
    "AdminUser",
    "AdmitResult",
    "ApiKeyInfo",
    "Clock",
    "Counters",
    "CountersUnavailable",
    "DailyRevenue",
    "DashboardQueries",
    "EndUserPage",
    "EndUserTable",
    "EndUserUsageRow",
    "InvalidTransition",
    "InvoiceFinalized",
    "InvoiceStore",
    "Ledger",
    "Metrics",
    "ModelUsage",
    "NoMetrics",
    "NotFound",
    "Operation",
    "PlanInUse",
    "PriceOverride",
    "PriceQuote",
    "Prices",
    "ProviderTarget",
    "RecordOutcome",
    "RecordStatus",
    "RepricedEvent",
    "Reservation",
    "RevenueReport",
    "SecretBox",
    "SeedNeeded",
    "StoredCredential",
    "StreamChunk",
    "TopUser",
    "UnpricedEvent",
    "UnpricedUsage",
    "Upstream",
    "UpstreamBroken",
    "UpstreamError",
    "UpstreamReply",
    "UpstreamUsage",
    "UsageRepricer",
    "UsageRow",
    "WindowTotals",
    "WireProtocol",
]


# ---------------------------------------------------------------- errors


class NotFound(LookupError):
    """The addressed record does not exist (in this project and environment)."""


class PlanInUse(Exception):
    """A rate plan still has end users and cannot be deleted."""


class CountersUnavailable(Exception):
    """The counter backend cannot be reached; admission follows the configured failure
    mode (closed: refuse with 503, open: admit unmetered by counters)."""


class SeedNeeded(Exception):
    """Counters for a user's current windows are missing (first sight, restart, Redis
    flushed): the caller must seed them from the ledger, then retry."""


# ---------------------------------------------------------------- clock


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC now."""
        ...


# ---------------------------------------------------------------- accounts


@dataclass(frozen=True, slots=True)
class EndUserPage:
    items: list[EndUser]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """USD per million tokens for one (project, model); provider ``""`` matches any."""

    model: str
    provider: str = ""
    input_per_mtok: Decimal = Decimal(0)
    output_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A project's own key for a provider, encrypted by the ``SecretBox``."""

    provider: str
    encrypted_secret: str
    base_url: str | None = None


class SecretBox(Protocol):
    """Encrypts secrets at rest (provider keys, Stripe tokens) with the app's secret key."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, token: str) -> str: ...


class Accounts(Protocol):
    """Organizations, projects, keys, plans, end users, alerts: the slowly changing state."""

    async def is_empty(self) -> bool: ...
    async def first_project(self) -> Project | None: ...
    async def create_organization(self, name: str) -> str: ...
    async def create_admin_user(
        self, organization_id: str, email: str, password_hash: str
    ) -> str: ...
    async def create_project(self, organization_id: str, name: str) -> Project: ...
    async def get_project(self, project_id: str) -> Project | None: ...
    async def update_project(self, project_id: str, **changes: object) -> Project: ...

    async def create_api_key(
        self, project_id: str, environment: Environment, key_hash: str, prefix: str
    ) -> ApiKey: ...
    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    async def revoke_api_key(self, project_id: str, key_id: str) -> None: ...

    async def list_plans(self, project_id: str) -> list[RatePlan]: ...
    async def get_plan(self, project_id: str, plan_id: str) -> RatePlan | None: ...
    async def default_plan(self, project_id: str) -> RatePlan | None: ...
    async def create_plan(self, project_id: str, plan: RatePlan) -> RatePlan:
        """Stores ``plan`` (its ``id`` is assigned here). ``is_default`` unsets any other."""
        ...

    async def update_plan(self, project_id: str, plan: RatePlan) -> RatePlan: ...
    async def delete_plan(self, project_id: str, plan_id: str) -> None:
        """Raises :class:`PlanInUse` if any end user (any environment) is on it."""
        ...

    async def plan_user_counts(
        self, project_id: str, environment: Environment
    ) -> dict[str, int]: ...

    async def get_or_create_end_user(
        self, key: UserKey, default_plan_id: str | None
    ) -> tuple[EndUser, bool]:
        """Atomic under concurrency: exactly one caller ever sees ``created=True``."""
        ...

    async def get_end_user(self, key: UserKey) -> EndUser | None: ...
    async def update_end_user(self, key: UserKey, **changes: object) -> EndUser: ...
    async def list_end_users(
        self,
        project_id: str,
        environment: Environment,
        *,
        search: str | None = None,
        rate_plan_id: str | None = None,
        blocked: bool | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> EndUserPage:
        """Raises ``ValueError`` for a cursor this store did not issue."""
        ...

    async def record_alert(self, alert: AlertRecord) -> bool:
        """Once per (project, environment, end user, kind, window); True if new."""
        ...

    async def list_alerts(
        self, project_id: str, environment: Environment, limit: int = 100
    ) -> list[AlertRecord]: ...

    async def price_overrides(self, project_id: str) -> list[PriceOverride]: ...
    async def set_provider_credential(
        self, project_id: str, provider: str, encrypted_secret: str, base_url: str | None
    ) -> None: ...
    async def provider_credentials(self, project_id: str) -> list[StoredCredential]: ...
    async def delete_provider_credential(self, project_id: str, provider: str) -> bool: ...
    async def set_price_override(self, project_id: str, override: PriceOverride) -> None: ...


# ---------------------------------------------------------------- ledger


class RecordStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    status: RecordStatus
    #: The stored event: the new one, or for a duplicate/conflict the original.
    event: UsageEvent


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Ledger sums for one user's current day and month (to seed counters)."""

    day: date
    daily_tokens: int = 0
    monthly_tokens: int = 0
    daily_requests: int = 0
    monthly_requests: int = 0
    daily_cost_nanos: int = 0
    monthly_cost_nanos: int = 0


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: str  # "YYYY-MM-DD" or "YYYY-MM"
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class DailyRevenue:
    day: date
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class TopUser:
    end_user_id: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class RevenueReport:
    totals: UsageTotals
    daily: list[DailyRevenue] = field(default_factory=list)
    top_users: list[TopUser] = field(default_factory=list)


class Ledger(Protocol):
    """The append-only usage ledger and its daily rollups."""

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        """Insert events idempotently on (project, environment, event_id).

        Each new event and its rollup update commit in one transaction; a replay with the
        same fingerprint is DUPLICATE, another fingerprint is CONFLICT; neither changes
        anything. Outcomes are in input order.
        """
        ...

    async def window_totals(self, key: UserKey, day: date) -> WindowTotals: ...
    async def usage(self, key: UserKey, granularity: str, start: date, end: date) -> list[UsageRow]:
        """Per-day or per-month sums for one user over inclusive UTC dates."""
        ...

    async def revenue(
        self, project_id: str, environment: Environment, start: date, end: date, top: int = 10
    ) -> RevenueReport: ...


# ---------------------------------------------------------------- counters


@dataclass(frozen=True, slots=True)
class Reservation:
    """Held against a user's limits between admission and settlement."""

    id: str
    tokens: int = 0
    cost_nanos: int = 0
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AdmitResult:
    decision: Decision
    #: Usage after the decision (including this request when admitted).
    usage: UsageSnapshot


class Counters(Protocol):
    """Per end user window counters with atomic check-and-increment.

    ``snapshot`` and ``admit`` raise :class:`SeedNeeded` when the user's current day or
    month counters are absent; the caller seeds them from :meth:`Ledger.window_totals`
    and retries. ``settle`` and ``release`` never raise it: when the windows are absent
    they apply nothing to them (the ledger, written first, already holds the event and
    the next seed reads it) but still drop the reservation, and bump the user's
    :meth:`seed_version` so that a seed racing with them is redone.

    Counters track only the current UTC day and month: usage settled with ``at`` in an
    earlier window changes the ledger alone. Expired reservations are released lazily
    (their request uncounted, their tokens and cost unheld) on any call for that user.
    Keys expire after their window; one user's keys share a Redis Cluster hash tag.
    """

    async def seed(
        self, key: UserKey, totals: WindowTotals, now: datetime, *, version: int | None = None
    ) -> bool:
        """Set the current windows from the ledger, only where they are still absent.

        With ``version`` (read by :meth:`seed_version` before the ledger was read) nothing
        is written, and False returned, if a settle found the windows absent meanwhile:
        that event may be missing from ``totals``, so the caller reads the ledger again."""
        ...

    async def seed_version(self, key: UserKey) -> int:
        """Mark a seed as under way and return its version: from now until the seed, a
        settle that finds the user's windows absent bumps it."""
        ...

    async def snapshot(self, key: UserKey, now: datetime) -> UsageSnapshot: ...
    async def admit(
        self,
        key: UserKey,
        limits: Limits,
        *,
        alert_only: bool,
        now: datetime,
        reservation: Reservation | None = None,
    ) -> AdmitResult:
        """Evaluate ``limits`` and, if admitted (or alert-only), count one request in the
        day, month and minute windows and hold ``reservation`` — all in one atomic step."""
        ...

    async def settle(
        self,
        key: UserKey,
        *,
        now: datetime,
        at: datetime,
        tokens: int,
        cost_nanos: int,
        reservation_id: str | None = None,
    ) -> bool:
        """Add actual usage at time ``at``. With a live ``reservation_id`` the reservation is
        released and its request was already counted; otherwise one request is counted.
        Returns whether a reservation was settled."""
        ...

    async def release(self, key: UserKey, reservation_id: str, *, now: datetime) -> bool:
        """Drop a reservation and uncount its request (the call failed, nothing billed)."""
        ...

    async def forget(self, key: UserKey) -> None:
        """Drop the user's counters so the next call reseeds from the ledger."""
        ...


# ---------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class PriceQuote:
    priced: bool
    provider_cost: Decimal | None = None
    provider: str | None = None


class Prices(Protocol):
    async def quote(
        self,
        project_id: str,
        *,
        provider: str | None,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        at: datetime | None = None,
    ) -> PriceQuote:
        """Provider cost in USD. An unknown model is ``priced=False``, never $0."""
        ...

    async def provider_of(self, model: str) -> str | None:
        """The provider the price table knows ``model`` from (for routing), if any."""
        ...


# ---------------------------------------------------------------- upstreams (providers)


class Operation(StrEnum):
    """What the client asked for, in the client's wire format."""

    CHAT = "chat"  # OpenAI chat completions
    EMBEDDINGS = "embeddings"  # OpenAI embeddings
    RESPONSES = "responses"  # OpenAI Responses API
    MESSAGES = "messages"  # Anthropic Messages API


class WireProtocol(StrEnum):
    """How a provider is spoken to."""

    OPENAI = "openai"  # any OpenAI-compatible base URL (OpenAI, Groq, vLLM, Gemini's…)
    ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    """Where one call goes: provider name (for pricing), protocol, endpoint, key, model."""

    provider: str
    protocol: WireProtocol
    base_url: str
    api_key: str | None
    model: str


@dataclass(frozen=True, slots=True)
class UpstreamUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UpstreamError(Exception):
    """The provider answered with an error, or could not be reached, before any output.

    ``body`` is already in the client's wire format (OpenAI- or Anthropic-style error
    JSON), so the gateway passes it through unchanged with ``status``.
    """

    def __init__(self, status: int, body: dict[str, Any], message: str = "") -> None:
        super().__init__(message or f"upstream error {status}")
        self.status = status
        self.body = body


class UpstreamBroken(Exception):
    """The stream broke after output had started (connection reset, timeout, bad data)."""


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete (non-streamed) answer, translated to the client's wire format."""

    status: int
    body: dict[str, Any]
    usage: UpstreamUsage | None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One server-sent event for the client, already in the client's wire format.

    ``data`` is the whole SSE event (``event:``/``data:`` lines and the blank line). The
    gateway forwards it unless ``usage_only`` is set and the client did not ask for
    usage. ``final`` marks the terminator (``data: [DONE]`` or Anthropic's
    ``message_stop``): the ledger row is written before it is sent.
    """

    data: bytes
    usage: UpstreamUsage | None = None
    text: str = ""
    usage_only: bool = False
    final: bool = False


class Upstream(Protocol):
    """One wire protocol to providers. Raises :class:`UpstreamError` before output,
    :class:`UpstreamBroken` once a stream has started."""

    async def send(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> UpstreamReply: ...

    def stream(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> AsyncIterator[StreamChunk]: ...


# ---------------------------------------------------------------- invoices


class InvoiceFinalized(Exception):
    """The period already has a finalized (non-draft) invoice for this end user."""


class InvalidTransition(Exception):
    """An invoice status change the lifecycle does not allow."""


class UnpricedUsage(Exception):
    """Finalization refused: some of the invoice's usage has no price. Set a price for
    ``models`` (a per-project override) and reprice the usage, then finalize again."""

    def __init__(self, models: Sequence[str]) -> None:
        self.models = tuple(models)
        names = ", ".join(self.models) or "(no model)"
        super().__init__(f"usage of these models has no price: {names}")


class InvoiceStore(Protocol):
    """Invoices and the link of each usage event to at most one finalized invoice."""

    async def users_with_usage(
        self, project_id: str, environment: Environment, start: date, end: date
    ) -> list[str]:
        """End users with invoiceable usage for the period: events in it not yet on a
        finalized invoice, plus late events of earlier, already finalized periods."""
        ...

    async def invoice_usage(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> list[LineUsage]:
        """Exact sums per (provider, model), late usage (``late=True``) apart."""
        ...

    async def save_draft(self, invoice: Invoice) -> Invoice:
        """Insert or replace the draft for (project, environment, end user, period).
        Raises :class:`InvoiceFinalized` when a non-draft invoice holds that key."""
        ...

    async def delete_draft(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> None: ...

    async def get_invoice(
        self, project_id: str, environment: Environment, invoice_id: str
    ) -> Invoice | None: ...

    async def list_invoices(
        self,
        project_id: str,
        environment: Environment,
        *,
        status: InvoiceStatus | None = None,
        end_user_id: str | None = None,
        period_start: date | None = None,
        period_end: date | None = None,
        limit: int = 100,
    ) -> list[Invoice]: ...

    async def finalize(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        now: datetime,
        currency: str,
    ) -> Invoice:
        """Atomically: recompute the lines from the events not yet invoiced, link those
        events to this invoice, number it (per project) and mark it open."""
        ...

    async def set_status(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        status: InvoiceStatus,
        *,
        stripe_invoice_id: str | None = None,
        hosted_invoice_url: str | None = None,
    ) -> Invoice: ...

    async def invoice_by_stripe_id(self, stripe_invoice_id: str) -> Invoice | None: ...

    async def invoice_events(
        self, project_id: str, environment: Environment, invoice: Invoice
    ) -> list[UsageEvent]:
        """The events behind an invoice: those linked to it once finalized, the currently
        invoiceable ones while it is a draft."""
        ...


@dataclass(frozen=True, slots=True)
class UnpricedEvent:
    """What repricing needs of a stored event that has no price yet."""

    pk: str
    end_user_id: str | None
    timestamp: datetime
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RepricedEvent:
    pk: str
    provider_cost: Decimal
    markup: Decimal
    charge: Decimal
    flat_fee: Decimal = Decimal(0)


class UsageRepricer(Protocol):
    """Prices, after the fact, events recorded without a price — the one change the
    append-only ledger allows: money columns go from NULL to a value, once, never back."""

    async def unpriced_events(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
        after_pk: str = "",
        limit: int = 500,
    ) -> list[UnpricedEvent]:
        """Unpriced, uninvoiced events ordered by ``pk``, those after ``after_pk``."""
        ...

    async def reprice_events(
        self, project_id: str, environment: Environment, updates: Sequence[RepricedEvent]
    ) -> int:
        """Set the money of still-unpriced events and move their daily rollups by the same
        amounts, in one transaction. Returns how many events changed."""
        ...

    async def count_unpriced(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> int: ...


# ---------------------------------------------------------------- dashboard (admins, read models)


@dataclass(frozen=True, slots=True)
class AdminUser:
    """A person who signs in to the dashboard; belongs to one organization."""

    id: str
    organization_id: str
    email: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What the dashboard may show of a key: never the key, only its display prefix."""

    id: str
    environment: Environment
    prefix: str
    revoked: bool
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    provider: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class EndUserUsageRow:
    """One row of the dashboard's end-user table: the user and its today/month sums."""

    user: EndUser
    today: UsageTotals
    month: UsageTotals


@dataclass(frozen=True, slots=True)
class EndUserTable:
    rows: list[EndUserUsageRow]
    total: int


class AdminAccounts(Protocol):
    """Dashboard sign-in and the organization's projects and keys."""

    async def admin_by_email(self, email: str) -> AdminUser | None: ...
    async def create_admin_user(
        self, organization_id: str, email: str, password_hash: str
    ) -> str: ...
    async def list_projects(self, organization_id: str) -> list[Project]: ...
    async def list_api_keys(self, project_id: str) -> list[ApiKeyInfo]: ...


class DashboardQueries(Protocol):
    """Read-only sums from the daily rollups, shaped for the dashboard's tables."""

    async def end_user_table(
        self,
        project_id: str,
        environment: Environment,
        *,
        today: date,
        search: str | None = None,
        rate_plan_id: str | None = None,
        blocked: bool | None = None,
        over_limit: bool | None = None,
        sort: str = "id",
        offset: int = 0,
        limit: int = 25,
    ) -> EndUserTable:
        """``sort``: ``id``, ``tokens`` or ``revenue`` (this month, descending)."""
        ...

    async def usage_by_model(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_id: str | None = None,
        limit: int = 20,
    ) -> list[ModelUsage]:
        """Sums per (model, provider) over inclusive dates, by charge descending."""
        ...


# ---------------------------------------------------------------- metrics


class Metrics(Protocol):
    """What the services report for operations to see (``/metrics``). Services call this
    instead of a metrics library, so they stay free of Prometheus and tests can ignore it.
    Label values must be low-cardinality: outcomes, reasons, provider names."""

    def admission(self, result: str, reason: str) -> None:
        """One admission decision: result ``allowed|denied|degraded|unavailable``."""
        ...

    def upstream(self, provider: str, outcome: str, seconds: float) -> None:
        """One provider call (first byte for streams): outcome ``ok|error``."""
        ...

    def ledger_write(self, outcome: str, count: int = 1) -> None:
        """Ledger rows written: ``recorded|duplicate|conflict|error``."""
        ...

    def counter_error(self, operation: str) -> None:
        """The counter backend could not be reached during ``operation``."""
        ...


class NoMetrics:
    """The default :class:`Metrics`: records nothing."""

    def admission(self, result: str, reason: str) -> None:
        return None

    def upstream(self, provider: str, outcome: str, seconds: float) -> None:
        return None

    def ledger_write(self, outcome: str, count: int = 1) -> None:
        return None

    def counter_error(self, operation: str) -> None:
        return None
