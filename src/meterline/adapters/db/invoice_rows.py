"""Invoice rows ↔ domain records: money columns are integer nano-dollars and cents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment
from meterline.domain.invoices import Invoice, InvoiceLine, InvoiceStatus
from meterline.domain.money import from_nanos, to_nanos

__all__ = ["NUMBER_PREFIX", "invoice_from_row", "line_from_row", "line_values"]

#: Invoice numbers read ``ML-000001``; the counter is per (project, environment).
NUMBER_PREFIX = "ML"


def line_values(invoice_id: str, line: InvoiceLine) -> dict[str, Any]:
    return {
        "id": t.new_id("il"),
        "invoice_id": invoice_id,
        "provider": line.provider,
        "model": line.model,
        "requests": line.requests,
        "prompt_tokens": line.prompt_tokens,
        "completion_tokens": line.completion_tokens,
        "total_tokens": line.prompt_tokens + line.completion_tokens,
        "provider_cost_nanos": to_nanos(line.provider_cost),
        "markup_nanos": to_nanos(line.markup),
        "charge_nanos": to_nanos(line.charge),
        "amount_cents": line.amount_cents,
        "late": line.late,
        "unpriced_requests": line.unpriced_requests,
        "flat_fee_nanos": to_nanos(line.flat_fees),
    }


def line_from_row(row: Any) -> InvoiceLine:
    return InvoiceLine(
        provider=row["provider"],
        model=row["model"],
        requests=int(row["requests"]),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        provider_cost=from_nanos(int(row["provider_cost_nanos"])),
        markup=from_nanos(int(row["markup_nanos"])),
        charge=from_nanos(int(row["charge_nanos"])),
        amount_cents=int(row["amount_cents"]),
        unpriced_requests=int(row["unpriced_requests"]),
        late=bool(row["late"]),
        flat_fees=from_nanos(int(row["flat_fee_nanos"])),
    )


def invoice_from_row(row: Any, lines: Sequence[Any]) -> Invoice:
    parsed = sorted(
        (line_from_row(r) for r in lines), key=lambda ln: (ln.late, ln.provider, ln.model)
    )
    return Invoice(
        id=row["id"],
        project_id=row["project_id"],
        environment=Environment(row["environment"]),
        end_user_id=row["end_user_id"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        status=InvoiceStatus(row["status"]),
        currency=row["currency"],
        lines=tuple(parsed),
        number=row["number"],
        created_at=row["created_at"],
        finalized_at=row["finalized_at"],
        stripe_invoice_id=row["stripe_invoice_id"],
        hosted_invoice_url=row["hosted_invoice_url"],
    )
