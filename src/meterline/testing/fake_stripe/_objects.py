"""Customers, invoices and invoice items on connected accounts, plus Express onboarding.

Objects are JSON-ready dicts shaped like Stripe's (``id``, ``object``, ``livemode``…), so
the real SDK deserializes them into its own classes. Mixed into
:class:`~._state.FakeStripeState`, whose lock is held by every caller.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._state import FakeStripeState

__all__ = ["ObjectsMixin"]


def _fail(status: int, message: str, **kw: Any) -> Exception:
    from ._state import StripeFailure

    return StripeFailure(status, message, **kw)


def _new_id(prefix: str) -> str:
    from ._state import new_id

    return new_id(prefix)


def _int(p: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    raw = p.get(name)
    if raw is None or raw == "":
        if required:
            raise _fail(
                400, f"Missing required param: {name}.", code="parameter_missing", param=name
            )
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise _fail(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name
        ) from None


def _missing(kind: str, oid: str, param: str = "id") -> Exception:
    return _fail(404, f"No such {kind}: '{oid}'", code="resource_missing", param=param)


class ObjectsMixin:
    # ------------------------------------------------------------------ Express onboarding

    def create_express_account(self: FakeStripeState, p: dict[str, Any]) -> dict[str, Any]:
        acct = self.add_account(
            type=p.get("type", "express"),
            email=p.get("email"),
            country=p.get("country", "US"),
            charges_enabled=False,
            details_submitted=False,
            metadata=p.get("metadata", {}),
        )
        return copy.deepcopy(self.accounts[acct])

    def create_account_link(self: FakeStripeState, p: dict[str, Any]) -> dict[str, Any]:
        for name in ("account", "type"):
            if not p.get(name):
                raise _fail(400, f"Missing required param: {name}.", param=name)
        if p["account"] not in self.accounts:
            raise _missing("account", p["account"], "account")
        now = int(time.time())
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"{self.url}/setup/e/{p['account']}/{_new_id('link')}",
        }

    # ------------------------------------------------------------------ dispatch

    def connected_object(
        self: FakeStripeState,
        method: str,
        resource: str,
        rest: list[str],
        p: dict[str, Any],
        acct: str,
        livemode: bool,
    ) -> dict[str, Any]:
        if resource == "customers":
            if method == "POST" and not rest:
                return self._create_customer(acct, p, livemode)
            if method == "GET" and len(rest) == 1:
                return copy.deepcopy(self._get("customer", self.customers, acct, rest[0]))
        if resource == "invoiceitems" and method == "POST" and not rest:
            return self._create_item(acct, p, livemode)
        if resource == "invoices":
            if method == "POST" and not rest:
                return self._create_invoice(acct, p, livemode)
            if method == "GET" and len(rest) == 1:
                return copy.deepcopy(self._get("invoice", self.invoices, acct, rest[0]))
            if method == "POST" and len(rest) == 2:
                return self._invoice_action(acct, rest[0], rest[1])
        raise _fail(404, f"Unrecognized request URL ({method}: /v1/{resource}/{'/'.join(rest)}).")

    def _get(
        self, kind: str, table: dict[str, dict[str, dict[str, Any]]], acct: str, oid: str
    ) -> dict[str, Any]:
        found = table.get(acct, {}).get(oid)
        if found is None:
            raise _missing(kind, oid)
        return found

    # ------------------------------------------------------------------ objects

    def _create_customer(
        self: FakeStripeState, acct: str, p: dict[str, Any], livemode: bool
    ) -> dict[str, Any]:
        cus = {
            "id": _new_id("cus"),
            "object": "customer",
            "email": p.get("email"),
            "name": p.get("name"),
            "description": p.get("description"),
            "metadata": p.get("metadata", {}),
            "livemode": livemode,
            "created": int(time.time()),
        }
        self.customers.setdefault(acct, {})[cus["id"]] = cus
        return copy.deepcopy(cus)

    def _create_invoice(
        self: FakeStripeState, acct: str, p: dict[str, Any], livemode: bool
    ) -> dict[str, Any]:
        cid = str(p.get("customer") or "")
        customer = self.customers.get(acct, {}).get(cid)
        if customer is None:
            raise _fail(
                400, f"No such customer: '{cid}'", code="resource_missing", param="customer"
            )
        method = p.get("collection_method", "charge_automatically")
        days = _int(p, "days_until_due")
        if method == "send_invoice":
            if days is None and not p.get("due_date"):
                raise _fail(400, "days_until_due or due_date is required for send_invoice.")
            if not customer.get("email"):
                raise _fail(
                    400,
                    "Missing email. In order to create invoices that are sent to the customer, "
                    "the customer must have a valid email.",
                    code="customer_missing_email",
                )
        now = int(time.time())
        inv = {
            "id": _new_id("in"),
            "object": "invoice",
            "customer": cid,
            "customer_email": customer.get("email"),
            "currency": str(p.get("currency", "usd")).lower(),
            "collection_method": method,
            "days_until_due": days,
            "due_date": now + days * 86400 if days is not None else None,
            "auto_advance": str(p.get("auto_advance", "false")) == "true",
            "description": p.get("description"),
            "metadata": p.get("metadata", {}),
            "status": "draft",
            "number": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "subtotal": 0,
            "total": 0,
            "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0},
            "livemode": livemode,
            "created": now,
            "status_transitions": {"finalized_at": None, "paid_at": None, "voided_at": None},
        }
        self.invoices.setdefault(acct, {})[inv["id"]] = inv
        return copy.deepcopy(inv)

    def _create_item(
        self: FakeStripeState, acct: str, p: dict[str, Any], livemode: bool
    ) -> dict[str, Any]:
        cid = str(p.get("customer") or "")
        if cid not in self.customers.get(acct, {}):
            raise _fail(
                400, f"No such customer: '{cid}'", code="resource_missing", param="customer"
            )
        amount = _int(p, "amount", required=True)
        currency = str(p.get("currency") or "").lower()
        if not currency:
            raise _fail(400, "Missing required param: currency.", param="currency")
        inv = None
        if p.get("invoice"):
            inv = self.invoices.get(acct, {}).get(str(p["invoice"]))
            if inv is None:
                raise _missing("invoice", str(p["invoice"]), "invoice")
            if inv["status"] != "draft":
                raise _fail(
                    400,
                    "Invoice items can only be added to draft invoices.",
                    code="invoice_not_editable",
                    param="invoice",
                )
            if inv["customer"] != cid:
                raise _fail(400, "The invoice belongs to another customer.", param="invoice")
            if inv["currency"] != currency:
                raise _fail(400, "The currency must match the invoice's.", param="currency")
        item = {
            "id": _new_id("ii"),
            "object": "invoiceitem",
            "customer": cid,
            "invoice": inv["id"] if inv else None,
            "amount": amount,
            "currency": currency,
            "description": p.get("description"),
            "metadata": p.get("metadata", {}),
            "livemode": livemode,
            "date": int(time.time()),
        }
        self.items.setdefault(acct, {})[item["id"]] = item
        if inv is not None:
            line = {
                "id": _new_id("il"),
                "object": "line_item",
                "amount": amount,
                "currency": currency,
                "description": item["description"],
            }
            inv["lines"]["data"].append(line)
            inv["lines"]["total_count"] += 1
            total = sum(li["amount"] for li in inv["lines"]["data"])
            inv.update(subtotal=total, total=total, amount_due=total, amount_remaining=total)
        return copy.deepcopy(item)

    def _invoice_action(self: FakeStripeState, acct: str, oid: str, action: str) -> dict[str, Any]:
        inv = self._get("invoice", self.invoices, acct, oid)
        status, now = inv["status"], int(time.time())
        if action == "finalize":
            if status != "draft":
                raise _fail(
                    400,
                    f"This invoice is already {status}; only a draft can be finalized.",
                    code="invoice_unexpected_state",
                )
            inv.update(
                status="open",
                number=self.next_number(acct),
                hosted_invoice_url=f"{self.url}/i/{acct}/{oid}",
                invoice_pdf=f"{self.url}/i/{acct}/{oid}/pdf",
            )
            inv["status_transitions"]["finalized_at"] = now
            if inv["amount_due"] == 0:  # Stripe marks a zero invoice paid at once
                inv["status"] = "paid"
                inv["status_transitions"]["paid_at"] = now
        elif action == "send":
            if status != "open" or inv["collection_method"] != "send_invoice":
                raise _fail(
                    400,
                    "Only open invoices with collection_method=send_invoice can be sent.",
                    code="invoice_unexpected_state",
                )
            self.sent[oid] = self.sent.get(oid, 0) + 1
        elif action == "void":
            if status != "open":
                raise _fail(
                    400,
                    f"You can only void open invoices; this one is {status}.",
                    code="invoice_unexpected_state",
                )
            inv["status"] = "void"
            inv["status_transitions"]["voided_at"] = now
        else:
            raise _fail(404, f"Unrecognized request URL (POST: /v1/invoices/{oid}/{action}).")
        return copy.deepcopy(inv)

    def pay(self: FakeStripeState, acct: str, oid: str) -> dict[str, Any]:
        """What the end user paying the hosted page does (test helper, not an endpoint)."""
        with self.lock:
            inv = self._get("invoice", self.invoices, acct, oid)
            if inv["status"] != "open":
                raise _fail(400, f"Invoice is {inv['status']}, not open.")
            inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0)
            inv["status_transitions"]["paid_at"] = int(time.time())
            return copy.deepcopy(inv)
