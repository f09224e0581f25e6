"""Build an annotator by kind name, checking that the options given make sense for it."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.annotation.base import Annotator
from ssi_plugin.annotation.image_check import ImageCheckedAnnotator
from ssi_plugin.errors import ConfigError

AnnotatorKind = Literal["caption", "mllm", "http"]
ANNOTATOR_KINDS: tuple[str, ...] = get_args(AnnotatorKind)


class AnnotatorOptions(BaseModel):
    """Every option of every annotator; ``create_annotator`` refuses the ones a kind does not use."""

    model_config = ConfigDict(frozen=True)

    image_tags: bool = False
    model: str | None = None
    endpoint: str | None = None
    api_key: str | None = None
    batch_size: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    text_only: bool = False
    check_images: bool = True
    """Open each local image's header before annotating (every kind); a missing or corrupt one fails as ``image_unreadable``."""


_USES: dict[str, frozenset[str]] = {
    "caption": frozenset({"image_tags", "model", "batch_size"}),
    "mllm": frozenset({"model", "batch_size"}),
    "http": frozenset({"model", "endpoint", "api_key", "batch_size", "concurrency", "timeout", "text_only"}),
}
_FLAG = {"image_tags": "--image-tags", "model": "--model", "endpoint": "--endpoint", "api_key": "--model-api-key",
         "batch_size": "--batch-size", "concurrency": "--concurrency", "timeout": "--timeout", "text_only": "--text-only"}


def create_annotator(kind: str, options: AnnotatorOptions | None = None) -> Annotator:
    """The annotator ``kind`` (``caption``, ``mllm`` or ``http``) configured by ``options``."""
    options = options or AnnotatorOptions()
    annotator = _annotator(kind, options)
    return ImageCheckedAnnotator(annotator) if options.check_images else annotator


def _annotator(kind: str, options: AnnotatorOptions) -> Annotator:
    if kind not in ANNOTATOR_KINDS:
        raise ConfigError(f"unknown annotator {kind!r}; choose one of {', '.join(ANNOTATOR_KINDS)}")
    given = {name for name, value in options.model_dump(exclude={"check_images"}).items() if value not in (None, False)}
    unused = sorted(given - _USES[kind])
    if unused:
        raise ConfigError(f"the {kind} annotator does not use {', '.join(_FLAG[name] for name in unused)}")
    extra = {name: getattr(options, name) for name in ("batch_size", "concurrency", "timeout") if name in given}
    if kind == "caption":
        from ssi_plugin.annotation.caption import CaptionAnnotator

        return CaptionAnnotator(spacy_model=options.model, image_tags=options.image_tags, **extra)
    if options.model is None:
        raise ConfigError(f"the {kind} annotator needs --model (a Hugging Face model name or local folder)"
                          if kind == "mllm" else "the http annotator needs --model (the model name the endpoint serves)")
    if kind == "mllm":
        from ssi_plugin.annotation.mllm import MLLMAnnotator

        return MLLMAnnotator(options.model, **extra)
    if options.endpoint is None:
        raise ConfigError("the http annotator needs --endpoint (the base URL of an OpenAI-compatible API, e.g. http://host:8000/v1)")
    from ssi_plugin.annotation.http import HTTPAnnotator

    return HTTPAnnotator(options.endpoint, model=options.model, api_key=options.api_key, send_images=not options.text_only, **extra)
