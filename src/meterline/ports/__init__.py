"""The seams services depend on. Adapters implement them; tests run one contract suite
against every implementation (memory/SQLite/PostgreSQL, memory/Redis). One module per
seam; everything is re-exported here, so ``from meterline.ports import X`` is the way in.

Stripe's ``Payments`` and ``StripeStore`` stay in ``services/stripe_ports.py``: their
errors are service errors (the web layer maps them), and ports may not import services.
"""

from __future__ import annotations

from meterline.ports.accounts import (
    Accounts,
    EndUserPage,
    PriceOverride,
    SecretBox,
    StoredCredential,
)
from meterline.ports.clock import Clock
from meterline.ports.counters import (
    AdmitResult,
    Counters,
    Reservation,
    Settlement,
)
from meterline.ports.dashboard import (
    AdminAccounts,
    AdminUser,
    ApiKeyInfo,
    DashboardQueries,
    EndUserTable,
    EndUserUsageRow,
    ModelUsage,
)
from meterline.ports.errors import (
    CountersUnavailable,
    NotFound,
    PlanInUse,
    SeedNeeded,
)
from meterline.ports.invalidation import InvalidationHandler, Invalidations
from meterline.ports.invoices import (
    InvalidTransition,
    InvoiceFinalized,
    InvoiceStore,
    RepricedEvent,
    UnpricedEvent,
    UnpricedUsage,
    UsageRepricer,
)
from meterline.ports.ledger import (
    DailyRevenue,
    Ledger,
    RecordOutcome,
    RecordStatus,
    RevenueReport,
    TopUser,
    UsageRow,
    WindowTotals,
)
from meterline.ports.metrics import (
    Metrics,
    NoMetrics,
)
from meterline.ports.prices import (
    PriceQuote,
    Prices,
)
from meterline.ports.upstreams import (
    Operation,
    ProviderTarget,
    StreamChunk,
    Upstream,
    UpstreamBroken,
    UpstreamError,
    UpstreamReply,
    UpstreamUsage,
    WireProtocol,
)

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
    "InvalidationHandler",
    "Invalidations",
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
    "Settlement",
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
