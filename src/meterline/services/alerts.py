"""Alerts: alert-only overages and unpriced usage, recorded once per user, kind and window
(the store's unique key makes the "once" hold across replicas)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from meterline.domain.entities import AlertRecord, Environment, UserKey
from meterline.domain.limits import DenyReason
from meterline.domain.windows import day_key, month_key
from meterline.ports import Accounts

__all__ = ["UNPRICED_MODEL", "AlertRecorder", "alert_window"]

UNPRICED_MODEL = "unpriced_model"


def alert_window(reason: DenyReason, now: datetime) -> str:
    """Daily limits alert once per UTC day, monthly once per month, bursts per minute."""
    if reason.value.startswith("daily_"):
        return day_key(now)
    if reason.value.startswith("monthly_"):
        return month_key(now)
    return now.strftime("%Y-%m-%dT%H:%M")


class AlertRecorder:
    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def overage(self, key: UserKey, reasons: Iterable[DenyReason], now: datetime) -> None:
        for reason in reasons:
            await self._accounts.record_alert(
                AlertRecord(
                    project_id=key.project_id,
                    environment=key.environment,
                    kind=reason.value,
                    end_user_id=key.end_user_id,
                    window=alert_window(reason, now),
                    message=f"{key.end_user_id} exceeded a limit on an alert-only plan: "
                    f"{reason.value}",
                    created_at=now,
                )
            )

    async def unpriced(
        self,
        project_id: str,
        environment: Environment,
        model: str,
        provider: str | None,
        now: datetime,
    ) -> None:
        await self._accounts.record_alert(
            AlertRecord(
                project_id=project_id,
                environment=environment,
                kind=UNPRICED_MODEL,
                end_user_id=None,
                window=f"{day_key(now)}:{provider or ''}/{model}",
                message=f"No price for model {model!r} (provider {provider or 'unknown'}): "
                "usage recorded unpriced; add a price override and reprice.",
                created_at=now,
            )
        )
