"""``ssi-plugin serve-model``: an OpenAI-compatible chat endpoint around a local transformers model.

So annotation can run as a separate service (a bigger machine, a GPU) and any
OpenAI client — the ``http`` annotator, the ``openai`` package, curl — can use
it. Implemented: ``GET /v1/models``, ``POST /v1/chat/completions`` (text and
``image_url`` parts with ``data:`` or http(s) URLs, local paths only when
allowed: see ``annotation.image_urls``; ``max_tokens`` /
``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``; ``n`` = 1,
no streaming) and ``GET /health``. Errors use OpenAI's shape
``{"error": {"message", "type", "param", "code"}}``: 400 for a bad request or
image, 401 for a missing key when one is required, 404 for another model name.
Requests are answered one at a time (the model owns the CPU cores); generation
runs off the event loop so the server keeps accepting connections.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.annotation.chat_model import LocalChatModel
from ssi_plugin.errors import InputError, validation_problems
from ssi_plugin.extras import requires_extra

DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_LIMIT = 4096


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request this server honours; unknown fields are ignored, as OpenAI servers do."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = None
    n: int = Field(default=1, ge=1)
    stream: bool = False


class APIError(Exception):
    def __init__(
        self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}


def create_app(chat: LocalChatModel, *, served_name: str | None = None, api_key: str | None = None) -> Any:
    """The ASGI app (FastAPI). ``served_name``: the model id clients name (default: the model's short name)."""
    with requires_extra("serve-model", "ssi-plugin serve-model"):
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    name = served_name or chat.name
    created = int(time.time())
    lock = asyncio.Lock()
    app = FastAPI(title="ssi-plugin model server", docs_url=None, redoc_url=None)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc, root="body")
        message = "; ".join(sentence for _, sentence in problems) or "invalid request"
        first_field = problems[0][0] if problems else ""
        return JSONResponse(APIError(400, message, param=first_field or None).body, status_code=400)

    @app.middleware("http")
    async def _authorize(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given, f"Bearer {api_key}"):
                body = APIError(401, "missing or wrong API key (Authorization: Bearer ...)", code="invalid_api_key").body
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created, "owned_by": "ssi-plugin"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest) -> dict[str, Any]:
        if request.model != name:
            raise APIError(
                404, f"model {request.model!r} is not served here; this server serves {name!r}", param="model", code="model_not_found"
            )
        if request.stream:
            raise APIError(400, "streaming is not supported; send stream=false", param="stream")
        if request.n != 1:
            raise APIError(400, "only n=1 is supported", param="n")
        messages = [m.model_dump(exclude_none=True) for m in request.messages]
        for message in messages:
            message.setdefault("content", "")
        max_tokens = request.max_completion_tokens or request.max_tokens or DEFAULT_MAX_TOKENS
        async with lock:
            try:
                [completion] = await run_in_threadpool(
                    chat.complete, [messages], max_new_tokens=max_tokens, temperature=request.temperature,
                    top_p=request.top_p, seed=request.seed,
                )
            except InputError as exc:
                raise APIError(400, str(exc), param="messages") from None
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": completion.text}, "finish_reason": completion.finish_reason}
            ],
            "usage": {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            },
        }

    return app


def serve(
    chat: LocalChatModel, *, host: str = "127.0.0.1", port: int = 8000, served_name: str | None = None, api_key: str | None = None
) -> None:
    """Load the model, then serve until interrupted."""
    import uvicorn

    app = create_app(chat, served_name=served_name, api_key=api_key)  # a missing extra is named before the model loads
    chat.load()
    uvicorn.run(app, host=host, port=port, log_level="info")
