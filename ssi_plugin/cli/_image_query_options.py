"""Which annotator reads query images (``search --image``, image queries through ``serve``): the same kinds as ingest."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click


def image_annotator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the query-image annotator flags; the command receives ``images`` (a ``QueryImageReader``)."""

    @click.option("--image-annotator", type=click.Choice(["caption", "mllm", "http"]), default="caption", show_default=True,
                  help="Annotator of query images, as at ingest: caption (offline: the caption's words and the image "
                       "classifier), mllm (a local model) or http (an OpenAI-compatible endpoint).")
    @click.option("--image-annotator-model", help="mllm: model name or folder; http: served model name.")
    @click.option("--image-annotator-endpoint", help="http: base URL of the API, e.g. http://localhost:8000/v1.")
    @click.option("--image-annotator-api-key", envvar="SSI_ANNOTATOR_API_KEY", help="http: bearer token [env: SSI_ANNOTATOR_API_KEY].")
    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        from ssi_plugin.annotation.factory import AnnotatorOptions
        from ssi_plugin.search.image_query import QueryImageReader

        kind = kwargs.pop("image_annotator")
        options = AnnotatorOptions(image_tags=kind == "caption", model=kwargs.pop("image_annotator_model"),
                                   endpoint=kwargs.pop("image_annotator_endpoint"), api_key=kwargs.pop("image_annotator_api_key"))
        kwargs["images"] = QueryImageReader.of_kind(kind, options)  # a wrong flag fails now, not on the first image
        return command(**kwargs)

    return wrapper
