"""One call to Claude that must answer through a tool (structured JSON), used by every AI reviewer.

The ``anthropic`` SDK is imported lazily (it takes over a second to import). Every failure is
turned into ``ProviderFailure`` with a kind (unavailable, timeout, malformed) so that callers can
fail open with a finding that says what happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from goldfish.config.svs import SvsConfig

FailureKind = Literal["unavailable", "timeout", "malformed"]


class ProviderFailure(Exception):
    """The AI provider gave no usable answer."""

    def __init__(self, kind: FailureKind, detail: str, *, model: str | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.model = model


@dataclass
class AiAnswer:
    data: dict[str, Any]
    model: str
    text: str
    duration_ms: int


def _client(svs: SvsConfig, timeout: float) -> Any:
    key = svs.effective_anthropic_api_key()
    if not key:
        raise ProviderFailure(
            "unavailable", "no API key: set ANTHROPIC_API_KEY (or svs.anthropic_api_key in goldfish.yaml)"
        )
    try:
        import anthropic
    except ImportError as exc:  # pragma: no cover - anthropic is a declared dependency
        raise ProviderFailure("unavailable", f"the anthropic package cannot be imported ({exc})") from None
    return anthropic.Anthropic(api_key=key, base_url=svs.anthropic_base_url, timeout=timeout, max_retries=0)


def _retry_with_fallback(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    return status in (404, 429, 500, 502, 503, 529)


def call_tool(
    svs: SvsConfig,
    *,
    system: str,
    prompt: str,
    tool_name: str,
    tool_description: str,
    answer: type[BaseModel],
    timeout: float,
    max_tokens: int = 4096,
) -> tuple[BaseModel, AiAnswer]:
    """Ask ``svs.agent_model`` (then ``agent_fallback_model`` if the first is unavailable) to answer
    by calling ``tool_name`` with arguments matching ``answer``; returns the parsed answer."""
    client = _client(svs, timeout)
    import anthropic

    tool = {"name": tool_name, "description": tool_description, "input_schema": answer.model_json_schema()}
    models = [svs.agent_model] + ([svs.agent_fallback_model] if svs.agent_fallback_model else [])
    started = time.monotonic()
    response = None
    model = models[0]
    for index, model in enumerate(models):
        try:
            response = client.messages.create(
                model=model,
                max_tokens=max_tokens,
                system=system,
                messages=[{"role": "user", "content": prompt}],
                tools=[tool],
                tool_choice={"type": "tool", "name": tool_name},
            )
            break
        except anthropic.APITimeoutError:
            raise ProviderFailure("timeout", f"no answer within {timeout:g} s", model=model) from None
        except anthropic.APIStatusError as exc:
            if index + 1 < len(models) and _retry_with_fallback(exc):
                continue
            raise ProviderFailure("unavailable", f"API error {exc.status_code}: {str(exc)[:300]}", model=model) from None
        except anthropic.APIError as exc:
            raise ProviderFailure("unavailable", f"{type(exc).__name__}: {str(exc)[:300]}", model=model) from None
    duration_ms = int((time.monotonic() - started) * 1000)
    blocks = list(getattr(response, "content", None) or [])
    text = "\n".join(str(getattr(b, "text", "")) for b in blocks if getattr(b, "type", None) == "text")
    call = next((b for b in blocks if getattr(b, "type", None) == "tool_use" and getattr(b, "name", None) == tool_name),
                None)
    if call is None:
        raise ProviderFailure("malformed", f"the answer did not call {tool_name} (text: {text[:200]!r})", model=model)
    raw = getattr(call, "input", None)
    try:
        parsed = answer.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProviderFailure("malformed", f"{tool_name} arguments invalid at {where}: {first['msg']}",
                              model=model) from None
    data = raw if isinstance(raw, dict) else {}
    return parsed, AiAnswer(data=data, model=str(getattr(response, "model", model) or model), text=text,
                            duration_ms=duration_ms)


def failure_message(what: str, failure: ProviderFailure) -> str:
    words = {"unavailable": "was unavailable", "timeout": "timed out", "malformed": "gave a malformed answer"}
    return f"The AI {what} {words[failure.kind]} ({failure.detail})."
