"""A real HTTP server that fakes OpenAI and Anthropic, for tests, demos and benchmarks.

Providers are unreachable in tests, so the gateway sends its traffic here. The wire formats
are close enough to the real ones that the official ``openai`` and ``anthropic`` SDKs, pointed
straight at this server, parse every response.

Endpoints (any auth header is accepted; every request is recorded)::

    POST /v1/chat/completions   OpenAI chat, stream and non-stream (stream_options.include_usage)
    POST /v1/embeddings         one 8-float embedding per input (float or base64 encoding)
    POST /v1/responses          OpenAI Responses API, stream and non-stream
    GET  /v1/models             OpenAI list (Anthropic list with an anthropic-version header)
    POST /v1/messages           Anthropic Messages, stream and non-stream
    GET  /healthz               {"ok": true}

Use it in-process::

    with running_fake_upstream() as fake:
        client = OpenAI(base_url=fake.openai_base_url, api_key="x")
        ...
        fake.requests[-1].body  # RecordedRequest(path, headers (lower-cased), body, method)

or as a process: ``python -m meterline.testing.fake_upstream --port 8900 [--host 127.0.0.1]
[--workers N] [--access-log]``. The foreground server does not record requests and logs no
access lines, so the default path is cheap (``--fast`` is accepted and changes nothing).

Deterministic content and token counts
--------------------------------------
``words(s)`` is ``len(s.split())`` (whitespace-separated words).

* Reply text: ``"Fake reply: "`` + N words cycling through ``alpha beta gamma delta …omega``
  (N = 8 by default, ``[fake:words=N]``), e.g. ``"Fake reply: alpha beta gamma delta epsilon
  zeta eta theta"``. The model name of the request is echoed.
* ``completion_tokens`` (Anthropic ``output_tokens``, Responses ``output_tokens``) =
  ``N + 2`` (the words of the reply, "Fake" and "reply:" included), plus ``[fake:reasoning=R]``.
  A tool-call reply (``[fake:tool]``) counts ``TOOL_COMPLETION_TOKENS`` = 6.
* ``prompt_tokens`` = the words of all message contents — string content, or the text parts
  (``text`` / ``input_text`` / ``output_text``; Anthropic ``tool_result`` content too) of list
  content — directives included, minimum 1. Anthropic adds ``system`` (string or text blocks).
  Responses: ``input`` (a string, or the contents of its items) plus ``instructions``.
  Embeddings: words of each string input, or the length of each token-id list.
* ``total_tokens`` = prompt + completion. Anthropic ``input_tokens`` = prompt - cached.
* Streams send one content chunk per word of the reply (``"Fake"``, ``" reply:"``,
  ``" alpha"`` …), so content chunks = N + 2 (6 argument pieces for a tool call).

Directives
----------
Read from the text of the LAST user message (chat, messages), the Responses ``input`` (or its
last user item), or the embeddings inputs. An unknown directive or a bad value gets a 400.

* ``[fake:status=NNN]`` respond with that status (200-599) and the provider's error JSON
  (OpenAI ``{"error": {"message", "type", "param": null, "code"}}``, Anthropic
  ``{"type": "error", "error": {"type", "message"}}``); ``[fake:retry_after=S]`` adds a
  ``retry-after: S`` header to it.
* ``[fake:words=N]`` reply of N words (after "Fake reply:").
* ``[fake:slow=MS]`` sleep MS before each streamed content chunk, and before a non-stream reply.
* ``[fake:timeout=MS]`` sleep MS before answering at all (before the status line).
* ``[fake:cut=N]`` stream only: after N content chunks, drop the connection mid-body (no
  finish chunk, no usage, no ``[DONE]`` / ``message_stop`` / ``response.completed``); the client
  sees a broken chunked response. N larger than the reply cuts after the last content chunk.
* ``[fake:no_usage]`` no usage at all: no ``usage`` field (non-stream), no usage chunk even if
  asked (OpenAI stream), no ``usage`` in Anthropic ``message_start`` and ``message_delta``, no
  ``usage`` in ``response.completed``.
* ``[fake:zero_usage]`` every usage number is 0 (Anthropic ``message_start`` output_tokens too).
* ``[fake:cached=C]`` report C cached prompt tokens (capped at prompt): OpenAI
  ``prompt_tokens_details.cached_tokens`` / Responses ``input_tokens_details.cached_tokens``,
  Anthropic ``cache_read_input_tokens`` (and ``input_tokens`` = prompt - C).
* ``[fake:reasoning=R]`` add R reasoning tokens to the completion
  (``completion_tokens_details.reasoning_tokens`` / ``output_tokens_details.reasoning_tokens``).
* ``[fake:tool]`` reply with a call to ``get_weather`` with arguments ``{"city": "Paris"}``:
  chat ``finish_reason: "tool_calls"`` + ``message.tool_calls`` (streamed as tool_call deltas),
  Anthropic ``tool_use`` block (``input_json_delta``) and ``stop_reason: "tool_use"``,
  Responses ``function_call`` output item (``response.function_call_arguments.delta``).
* ``[fake:malformed]`` 200 with a body that is not JSON (non-stream), or a garbage ``data:``
  line after the first event (stream).

``response_format``, ``tools`` and the like are accepted without validation; ``n`` is ignored.
"""

from __future__ import annotations

from ._app import create_app
from ._core import (
    DEFAULT_WORDS,
    TOOL_ARGUMENTS,
    TOOL_COMPLETION_TOKENS,
    TOOL_NAME,
    RecordedRequest,
    RequestLog,
    reply_text,
)
from ._openai import EMBEDDING_DIM
from ._server import FakeUpstream, main, running_fake_upstream

__all__ = [
    "DEFAULT_WORDS",
    "EMBEDDING_DIM",
    "TOOL_ARGUMENTS",
    "TOOL_COMPLETION_TOKENS",
    "TOOL_NAME",
    "FakeUpstream",
    "RecordedRequest",
    "RequestLog",
    "create_app",
    "main",
    "reply_text",
    "running_fake_upstream",
]
