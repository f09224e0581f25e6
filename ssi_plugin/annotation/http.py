"""The ``http`` annotator: any OpenAI-compatible chat-completions endpoint (vLLM, TGI, Ollama, serve-model).

The image travels inline as a ``data:`` URL, so the server needs no access to
the dataset's files. Requests of a batch run in parallel, at most
``concurrency`` at a time (threads over one pooled ``httpx.Client``). A request
that times out, cannot connect, or gets 429 / 5xx is retried up to
``max_retries`` times with capped exponential backoff (``Retry-After`` is
honoured); any other refusal, or a reply without a message, fails the record
at once with reason ``request_failed``. Answers go through the same repair and
retry rules as the ``mllm`` annotator (``prompted.py``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ssi_plugin.annotation.prompted import (
    PROMPT_VERSION,
    RETRY_TEMPERATURE,
    Message,
    PromptedAnnotator,
)
from ssi_plugin.errors import AnnotationError, ConfigError

if TYPE_CHECKING:
    import httpx

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 20.0


class HTTPAnnotator(PromptedAnnotator):
    """Identifiers written by a model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = "http"

    def __init__(
        self,
        endpoint: str,
        *,
        model: str,
        api_key: str | None = None,
        batch_size: int = 16,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_tokens: int = 160,
        retries: int = 2,
        send_images: bool = True,
        seed: int = 0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint {endpoint!r} must start with http:// or https://")
        self.url = endpoint.rstrip("/").removesuffix("/chat/completions") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        self.retries = retries
        self.send_images = send_images
        self.seed = seed
        self._transport = transport

    @property
    def version(self) -> str:
        return f"http/{PROMPT_VERSION} {self.model}"

    @property
    def sends_images(self) -> bool:
        return self.send_images

    @functools.cached_property
    def _client(self) -> httpx.Client:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            transport=self._transport,
        )

    def close(self) -> None:
        if "_client" in self.__dict__:
            self._client.close()

    def complete(self, conversations: Sequence[list[Message]], *, attempt: int) -> list[str | AnnotationError]:
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": RETRY_TEMPERATURE if attempt else 0.0,
            "seed": self.seed + attempt,
        }
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda messages: self._ask({**body, "messages": messages}), conversations))

    def _ask(self, body: dict[str, Any]) -> str | AnnotationError:
        import httpx

        problem = ""
        for attempt in range(self.max_retries + 1):
            wait = min(self.backoff * 2**attempt, MAX_BACKOFF_S)
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException:
                problem = f"no answer from {self.url} within {self.timeout:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.url}: {exc}"
            else:
                if response.status_code == 200:
                    return _message_text(response)
                problem = f"{self.url} answered {response.status_code}: {_error_message(response)}"
                if response.status_code not in RETRY_STATUS:
                    return AnnotationError("request_failed", problem)
                wait = max(wait, _retry_after(response))
            if attempt < self.max_retries:
                time.sleep(min(wait, MAX_BACKOFF_S))
        return AnnotationError("request_failed", f"{problem} (after {self.max_retries + 1} tries)")


def _message_text(response: httpx.Response) -> str | AnnotationError:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return AnnotationError("request_failed", f"the endpoint's reply is not a chat completion: {response.text[:200]!r}")
    return content if isinstance(content, str) else ""


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason_phrase or response.text[:200])


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", 0))
    except ValueError:
        return 0.0
