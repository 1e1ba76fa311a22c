"""Invoices as CSV (for spreadsheets and accountants) and as JSON-ready dicts.

CSV layout — one table, RFC 4180 (``csv`` module, CRLF line ends), UTF-8 with a header
row. ``row_type`` is ``line`` for each invoice line and ``total`` for one closing row per
invoice (its money columns are the invoice's sums; ``amount`` is its total), so a
spreadsheet filter on ``row_type`` gives either view. ``amount`` is the rounded amount in
major units (``12.34``), the ``*_usd`` columns the exact unrounded sums. Events export
as a CSV of their own (``events_csv``), one row per usage event.

Text a client chose (end user ids, model names) is prefixed with ``'`` when it starts
like a formula (``= + - @``), so opening the file can never run one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from meterline.domain.entities import UsageEvent
from meterline.domain.invoices import Invoice, InvoiceLine, minor_to_major
from meterline.domain.money import money_str

__all__ = [
    "EVENT_COLUMNS",
    "LINE_COLUMNS",
    "event_dict",
    "events_csv",
    "invoice_dict",
    "invoices_csv",
    "line_dict",
]

LINE_COLUMNS = (
    "row_type",
    "invoice_id",
    "number",
    "status",
    "end_user_id",
    "period_start",
    "period_end",
    "currency",
    "provider",
    "model",
    "late",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "provider_cost_usd",
    "markup_usd",
    "flat_fees_usd",
    "charge_usd",
    "unpriced_requests",
    "amount",
)

EVENT_COLUMNS = (
    "invoice_id",
    "number",
    "event_id",
    "end_user_id",
    "timestamp",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "priced",
    "provider_cost_usd",
    "markup_usd",
    "charge_usd",
    "late",
)


def _safe(text: str | None) -> str:
    value = text or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _money(amount: Decimal | None) -> str | None:
    return None if amount is None else money_str(amount)


def _major(amount_minor: int, currency: str) -> str:
    return format(minor_to_major(amount_minor, currency), "f")


def line_dict(line: InvoiceLine) -> dict[str, Any]:
    return {
        "provider": line.provider,
        "model": line.model,
        "late": line.late,
        "requests": line.requests,
        "prompt_tokens": line.prompt_tokens,
        "completion_tokens": line.completion_tokens,
        "provider_cost_usd": _money(line.provider_cost),
        "markup_usd": _money(line.markup),
        "flat_fees_usd": _money(line.flat_fees),
        "charge_usd": _money(line.charge),
        "amount_cents": line.amount_cents,
        "unpriced_requests": line.unpriced_requests,
        "description": line.description,
    }


def invoice_dict(inv: Invoice) -> dict[str, Any]:
    return {
        "id": inv.id,
        "number": inv.number,
        "status": inv.status.value,
        "end_user_id": inv.end_user_id,
        "environment": inv.environment.value,
        "period_start": inv.period_start.isoformat(),
        "period_end": inv.period_end.isoformat(),
        "currency": inv.currency,
        "total_cents": inv.total_cents,
        "total": _major(inv.total_cents, inv.currency),
        "provider_cost_usd": _money(inv.provider_cost),
        "margin_usd": _money(inv.margin),
        "unpriced_models": list(inv.unpriced_models),
        "lines": [line_dict(ln) for ln in inv.lines],
        "created_at": inv.created_at.isoformat() if inv.created_at else None,
        "finalized_at": inv.finalized_at.isoformat() if inv.finalized_at else None,
        "stripe_invoice_id": inv.stripe_invoice_id,
        "hosted_invoice_url": inv.hosted_invoice_url,
    }


def event_dict(ev: UsageEvent, invoice: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.id,
        "number": invoice.number,
        "event_id": ev.event_id,
        "end_user_id": ev.end_user_id,
        "timestamp": ev.timestamp.isoformat(),
        "provider": ev.provider,
        "model": ev.model,
        "prompt_tokens": ev.prompt_tokens,
        "completion_tokens": ev.completion_tokens,
        "total_tokens": ev.total_tokens,
        "priced": ev.priced,
        "provider_cost_usd": _money(ev.provider_cost),
        "markup_usd": _money(ev.markup),
        "charge_usd": _money(ev.charge),
        "late": ev.timestamp.date() < invoice.period_start,
    }


def _writer(columns: Sequence[str]) -> tuple[io.StringIO, Any]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    return buffer, writer


def invoices_csv(invoices: Iterable[Invoice]) -> str:
    buffer, writer = _writer(LINE_COLUMNS)
    for inv in invoices:
        head = {
            "invoice_id": inv.id,
            "number": inv.number or "",
            "status": inv.status.value,
            "end_user_id": _safe(inv.end_user_id),
            "period_start": inv.period_start.isoformat(),
            "period_end": inv.period_end.isoformat(),
            "currency": inv.currency,
        }
        for ln in inv.lines:
            writer.writerow(
                head
                | {
                    "row_type": "line",
                    "provider": _safe(ln.provider),
                    "model": _safe(ln.model),
                    "late": "true" if ln.late else "false",
                    "requests": ln.requests,
                    "prompt_tokens": ln.prompt_tokens,
                    "completion_tokens": ln.completion_tokens,
                    "provider_cost_usd": money_str(ln.provider_cost),
                    "markup_usd": money_str(ln.markup),
                    "flat_fees_usd": money_str(ln.flat_fees),
                    "charge_usd": money_str(ln.charge),
                    "unpriced_requests": ln.unpriced_requests,
                    "amount": _major(ln.amount_cents, inv.currency),
                }
            )
        charge = sum((ln.charge for ln in inv.lines), Decimal(0))
        writer.writerow(
            head
            | {
                "row_type": "total",
                "requests": sum(ln.requests for ln in inv.lines),
                "prompt_tokens": sum(ln.prompt_tokens for ln in inv.lines),
                "completion_tokens": sum(ln.completion_tokens for ln in inv.lines),
                "provider_cost_usd": money_str(inv.provider_cost),
                "markup_usd": money_str(charge - inv.provider_cost),
                "flat_fees_usd": money_str(sum((ln.flat_fees for ln in inv.lines), Decimal(0))),
                "charge_usd": money_str(charge),
                "unpriced_requests": sum(ln.unpriced_requests for ln in inv.lines),
                "amount": _major(inv.total_cents, inv.currency),
            }
        )
    return buffer.getvalue()


def events_csv(rows: Iterable[tuple[Invoice, Sequence[UsageEvent]]]) -> str:
    buffer, writer = _writer(EVENT_COLUMNS)
    for invoice, events in rows:
        for ev in events:
            row = event_dict(ev, invoice)
            for name in ("event_id", "end_user_id", "provider", "model"):
                row[name] = _safe(row[name])
            row["priced"] = "true" if row["priced"] else "false"
            row["late"] = "true" if row["late"] else "false"
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()
