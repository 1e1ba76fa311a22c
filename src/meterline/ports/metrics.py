"""Ports: metrics."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Metrics", "NoMetrics"]


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
