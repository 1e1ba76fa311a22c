"""Stripe Connect behind the ``Payments`` port (``services.stripe_ports``)."""

from meterline.adapters.stripe.payments import StripePayments, customer_idempotency_key

__all__ = ["StripePayments", "customer_idempotency_key"]
