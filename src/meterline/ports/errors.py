"""Ports: errors."""

from __future__ import annotations

__all__ = ["CountersUnavailable", "NotFound", "PlanInUse", "SeedNeeded"]


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
