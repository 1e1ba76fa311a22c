"""Provider prices: the ``genai-prices`` table behind ``ports.Prices``, overridable per
project and model (DESIGN.md §3). Costs are exact ``Decimal`` USD; an unknown model is
reported unpriced rather than free."""

from __future__ import annotations

from meterline.adapters.prices.genai import GenaiPrices

__all__ = ["GenaiPrices"]
