"""The gateway pipeline: admit → forward → meter → settle.

Admission goes through the same counters as check-quota (with a reservation sized from
the prompt and ``max_tokens``). Usage comes from the provider's report; only when a
provider reports none, or a stream breaks, is it estimated from the text and flagged.
The ledger row is written before the response completes: for streams, before the
terminating event is sent. A client that disconnects mid-stream does not stop the
metering: the upstream is read on (for at most ``drain_timeout``) and what it generated
is billed. Upstream errors are passed through, never billed, and release the reservation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from meterline.domain.entities import EndUser
from meterline.domain.limits import Deny, DenyReason
from meterline.domain.windows import next_day_start, seconds_until
from meterline.ports import (
    Clock,
    Metrics,
    NoMetrics,
    Operation,
    ProviderTarget,
    StreamChunk,
    Upstream,
    UpstreamBroken,
    UpstreamError,
    UpstreamReply,
    UpstreamUsage,
)
from meterline.services.admission import Admission, QuotaCheck
from meterline.services.auth import AuthContext
from meterline.services.errors import ServiceError
from meterline.services.metering import Metering
from meterline.services.routing import Router

__all__ = ["Admitted", "Denied", "Gateway", "GatewayRequest", "estimate_tokens"]

log = logging.getLogger("meterline.gateway")

CHARS_PER_TOKEN = 4
#: Stream endings where the provider's usage may be incomplete.
_BROKEN = frozenset({"broken", "drain_timeout"})


def estimate_tokens(text: str) -> int:
    """A deliberately simple estimate (≈ 4 characters a token), used only when the
    provider reports no usage; such events are flagged ``estimated``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


class Denied(ServiceError):
    """Admission said no: 403 for who/what, 429 with Retry-After for a limit."""

    def __init__(self, reason: DenyReason, retry_after: int | None) -> None:
        if reason in (DenyReason.USER_BLOCKED, DenyReason.MODEL_NOT_ALLOWED):
            self.status, self.type = 403, "permission_error"
            message = (
                "This end user is blocked."
                if reason is DenyReason.USER_BLOCKED
                else "This model is not allowed on the end user's plan."
            )
        else:
            self.status, self.type = 429, "rate_limit_error"
            message = f"Rate plan limit reached: {reason.value}."
            if retry_after:
                message += f" Retry after {retry_after} seconds."
        super().__init__(message, code=reason.value)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    ctx: AuthContext
    operation: Operation
    body: dict[str, Any]
    model: str
    end_user_id: str | None
    stream: bool
    #: The client itself asked for the usage chunk (``stream_options.include_usage``).
    client_wants_usage: bool = False
    estimated_prompt_tokens: int = 0
    max_tokens: int | None = None
    request_id: str = field(default_factory=lambda: "req_" + secrets.token_hex(12))


@dataclass(slots=True)
class Admitted:
    target: ProviderTarget
    user: EndUser | None
    check: QuotaCheck | None
    started: float

    @property
    def reservation_id(self) -> str | None:
        return self.check.reservation_id if self.check else None


@dataclass(slots=True)
class _StreamState:
    client_gone_at: float | None = None


class Gateway:
    def __init__(
        self,
        admission: Admission,
        metering: Metering,
        router: Router,
        upstream_for: Callable[[ProviderTarget], Upstream],
        clock: Clock,
        *,
        drain_timeout: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics: Metrics = metrics or NoMetrics()
        self._admission = admission
        self._metering = metering
        self._router = router
        self._upstream_for = upstream_for
        self._clock = clock
        self._drain_timeout = drain_timeout
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ admission

    async def admit(self, req: GatewayRequest) -> Admitted:
        target = await self._router.resolve(req.ctx.project, req.model)
        started = time.monotonic()
        if req.end_user_id is None:
            return Admitted(target, None, None, started)
        estimate = req.estimated_prompt_tokens + (req.max_tokens or 0)
        check = await self._admission.check(
            req.ctx,
            req.end_user_id,
            model=req.model,
            reserve=True,
            estimated_tokens=estimate,
        )
        if isinstance(check.decision, Deny):
            raise Denied(check.decision.reason, check.decision.retry_after_seconds)
        return Admitted(target, check.end_user, check, started)

    def rate_limit_headers(self, adm: Admitted) -> dict[str, str]:
        """OpenAI-style ``x-ratelimit-*`` for the limits the end user's plan sets."""
        if adm.check is None:
            return {}
        if adm.check.degraded:  # admitted without counters (counters_failure=open)
            return {"x-meterline-degraded": "counters_unavailable"}
        limits, usage = adm.check.plan.limits, adm.check.usage
        now = self._clock.now()
        headers: dict[str, str] = {}
        if limits.requests_per_minute is not None:
            headers["x-ratelimit-limit-requests"] = str(limits.requests_per_minute)
            left = limits.requests_per_minute - usage.minute_requests
            headers["x-ratelimit-remaining-requests"] = str(max(0, left))
            headers["x-ratelimit-reset-requests"] = "60s"
        elif limits.daily_request_limit is not None:
            headers["x-ratelimit-limit-requests"] = str(limits.daily_request_limit)
            left = limits.daily_request_limit - usage.daily_requests
            headers["x-ratelimit-remaining-requests"] = str(max(0, left))
            headers["x-ratelimit-reset-requests"] = f"{seconds_until(now, next_day_start(now))}s"
        if limits.daily_token_limit is not None:
            headers["x-ratelimit-limit-tokens"] = str(limits.daily_token_limit)
            left = limits.daily_token_limit - usage.daily_tokens
            headers["x-ratelimit-remaining-tokens"] = str(max(0, left))
            headers["x-ratelimit-reset-tokens"] = f"{seconds_until(now, next_day_start(now))}s"
        return headers

    # ------------------------------------------------------------------ non-streaming

    async def complete(self, req: GatewayRequest, adm: Admitted) -> UpstreamReply:
        upstream = self._upstream_for(adm.target)
        sent = time.monotonic()
        try:
            reply = await upstream.send(adm.target, req.operation, self._body(req, adm))
        except BaseException:
            self._metrics.upstream(adm.target.provider, "error", time.monotonic() - sent)
            await self._release(adm)
            raise
        self._metrics.upstream(adm.target.provider, "ok", time.monotonic() - sent)
        usage, estimated = reply.usage, False
        if usage is None:
            usage = UpstreamUsage(
                req.estimated_prompt_tokens, estimate_tokens(_reply_text(reply.body))
            )
            estimated = True
        await self._record(req, adm, usage, estimated=estimated, status="success")
        return reply

    # ------------------------------------------------------------------ streaming

    async def open_stream(self, req: GatewayRequest, adm: Admitted) -> AsyncIterator[bytes]:
        """Start the upstream stream. Errors before the first event raise here (so the
        client gets a proper error status); afterwards a background task owns the upstream
        and the metering, and the returned iterator only relays."""
        upstream = self._upstream_for(adm.target)
        chunks = upstream.stream(adm.target, req.operation, self._body(req, adm)).__aiter__()
        sent = time.monotonic()
        try:
            first: StreamChunk | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except UpstreamBroken as exc:
            self._metrics.upstream(adm.target.provider, "error", time.monotonic() - sent)
            await self._release(adm)
            raise UpstreamError(502, _error_body(f"upstream stream failed: {exc}")) from exc
        except BaseException:
            self._metrics.upstream(adm.target.provider, "error", time.monotonic() - sent)
            await self._release(adm)
            raise
        self._metrics.upstream(adm.target.provider, "ok", time.monotonic() - sent)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        state = _StreamState()
        task = asyncio.create_task(self._pump(req, adm, first, chunks, queue, state))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return self._relay(queue, state)

    async def _relay(
        self, queue: asyncio.Queue[bytes | None], state: _StreamState
    ) -> AsyncIterator[bytes]:
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            if state.client_gone_at is None:
                state.client_gone_at = time.monotonic()

    async def _pump(
        self,
        req: GatewayRequest,
        adm: Admitted,
        first: StreamChunk | None,
        chunks: AsyncIterator[StreamChunk],
        queue: asyncio.Queue[bytes | None],
        state: _StreamState,
    ) -> None:
        prompt = completion = cached = 0
        seen_usage = False
        text: list[str] = []
        recorded = False
        status = "success"
        item = first
        try:
            while item is not None:
                if item.usage is not None:
                    seen_usage = True
                    prompt = max(prompt, item.usage.prompt_tokens)
                    completion = max(completion, item.usage.completion_tokens)
                    cached = max(cached, item.usage.cached_tokens)
                text.append(item.text)
                terminal = item.final or (
                    req.operation is Operation.RESPONSES and item.usage is not None
                )
                if terminal and not recorded:
                    usage, estimated = self._usage(
                        req, seen_usage, prompt, completion, cached, text
                    )
                    gone = state.client_gone_at is not None
                    await self._record(
                        req,
                        adm,
                        usage,
                        estimated=estimated,
                        status="client_disconnected" if gone else status,
                    )
                    recorded = True
                if state.client_gone_at is None and not (
                    item.usage_only and not req.client_wants_usage
                ):
                    queue.put_nowait(item.data)
                item = await self._next(chunks, state)
        except (UpstreamBroken, UpstreamError, TimeoutError) as exc:
            status = "broken" if not isinstance(exc, TimeoutError) else "drain_timeout"
            if state.client_gone_at is None:
                queue.put_nowait(_sse_error(req, "upstream stream broke before it finished"))
        except Exception:
            # The ledger (or pricing) failed: the usage is not durable, so the client must
            # not see a normal end of stream. Retried once below with the same event id.
            log.exception("stream %s: recording usage failed", req.request_id)
        finally:
            if state.client_gone_at is not None and status == "success":
                status = "client_disconnected"
            try:
                if not recorded:
                    usage, estimated = self._usage(
                        req, seen_usage, prompt, completion, cached, text, broken=status in _BROKEN
                    )
                    await asyncio.shield(
                        self._record(req, adm, usage, estimated=estimated, status=status)
                    )
            except Exception:
                log.exception("stream %s: usage could not be recorded", req.request_id)
                if state.client_gone_at is None:
                    queue.put_nowait(_sse_error(req, "usage could not be recorded; stream ended"))
            finally:
                # Always end the relay, or the client would wait forever.
                queue.put_nowait(None)

    async def _next(
        self, chunks: AsyncIterator[StreamChunk], state: _StreamState
    ) -> StreamChunk | None:
        if state.client_gone_at is None:
            return await anext(chunks, None)
        left = self._drain_timeout - (time.monotonic() - state.client_gone_at)
        if left <= 0:
            raise TimeoutError
        return await asyncio.wait_for(anext(chunks, None), timeout=left)

    def _usage(
        self,
        req: GatewayRequest,
        seen: bool,
        prompt: int,
        completion: int,
        cached: int,
        text: list[str],
        *,
        broken: bool = False,
    ) -> tuple[UpstreamUsage, bool]:
        """Provider usage when reported. A broken stream may have reported only part of it
        (Anthropic gives the prompt up front, the output count at the end): its output is
        then at least what the streamed text shows, flagged as estimated."""
        streamed = estimate_tokens("".join(text))
        if seen and not (broken and streamed > completion):
            return UpstreamUsage(prompt, completion, cached), False
        if seen:
            return UpstreamUsage(prompt, streamed, cached), True
        return UpstreamUsage(req.estimated_prompt_tokens, streamed), True

    async def drain(self) -> None:
        """Wait for streams still being metered (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # ------------------------------------------------------------------ shared

    def _body(self, req: GatewayRequest, adm: Admitted) -> dict[str, Any]:
        body = dict(req.body)
        body["model"] = adm.target.model
        return body

    async def _record(
        self,
        req: GatewayRequest,
        adm: Admitted,
        usage: UpstreamUsage,
        *,
        estimated: bool,
        status: str,
    ) -> None:
        now = self._clock.now()
        event = await self._metering.price_event(
            req.ctx,
            adm.user,
            event_id=req.request_id,
            at=now,
            model=adm.target.model,
            provider=adm.target.provider,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=usage.cached_tokens,
            estimated=estimated,
            latency_ms=int((time.monotonic() - adm.started) * 1000),
            status=status,
            metadata={
                "operation": req.operation.value,
                "stream": req.stream,
                "requested_model": req.model,
            },
            reservation_id=adm.reservation_id,
            source="gateway",
            now=now,
        )
        await self._metering.record_priced(event, now)

    async def _release(self, adm: Admitted) -> None:
        if adm.user is not None and adm.reservation_id:
            await self._admission.release(adm.user.key, adm.reservation_id)


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "upstream_error", "code": "upstream_error"}}


def _sse_error(req: GatewayRequest, message: str) -> bytes:
    if req.operation is Operation.MESSAGES:
        payload = {"type": "error", "error": {"type": "api_error", "message": message}}
        return f"event: error\ndata: {json.dumps(payload)}\n\n".encode()
    return f"data: {json.dumps(_error_body(message))}\n\n".encode()


def _reply_text(body: dict[str, Any]) -> str:
    """The generated text of a reply in any of the wire formats (for estimates only)."""
    parts: list[str] = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            parts.append(message["content"])
    for block in body.get("content") or []:  # Anthropic
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    for item in body.get("output") or []:  # Responses
        for block in (item.get("content") or []) if isinstance(item, dict) else []:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
    return "".join(parts)
