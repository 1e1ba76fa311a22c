"""Ports: prices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = ["PriceQuote", "Prices"]


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
