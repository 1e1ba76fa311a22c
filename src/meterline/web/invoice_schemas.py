"""OpenAPI descriptions of the invoice and price bodies (parsed by hand via ``read_json``,
so money never passes through float). These models document; they never parse."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from meterline.web.schemas import _body, _inline

__all__ = ["GENERATE_BODY", "PRICE_BODY", "REPRICE_BODY"]

_DATE = "a UTC date, YYYY-MM-DD (inclusive)"
_PRICE = "USD per million tokens: a decimal string (preferred) or number, never via float"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateBody(_Strict):
    period_start: str = Field(description=_DATE)
    period_end: str = Field(description=_DATE + "; at most 366 days after period_start")
    end_user_ids: list[str] | None = Field(
        None, description="only these end users (default: every user with usage)"
    )
    send_via_stripe: bool = False


class PriceBody(_Strict):
    provider: str | None = Field(None, max_length=64, description="omit to match any")
    input_per_mtok: str | int = Field(description=_PRICE)
    output_per_mtok: str | int = Field(description=_PRICE)
    cached_input_per_mtok: str | int | None = Field(None, description=_PRICE)


class RepriceBody(_Strict):
    model: str | None = Field(None, description="only this model")
    from_: str | None = Field(None, alias="from", description=_DATE)
    to: str | None = Field(None, description=_DATE)


GENERATE_BODY = _body(GenerateBody.model_json_schema())
PRICE_BODY = _body(PriceBody.model_json_schema())
REPRICE_BODY = _body(_inline(RepriceBody.model_json_schema(by_alias=True)))
REPRICE_BODY["requestBody"]["required"] = False  # no body: reprice everything unpriced
