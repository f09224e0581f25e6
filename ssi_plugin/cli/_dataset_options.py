"""Flags shared by the commands that read a dataset and annotate it (annotate, ingest, eval)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def annotator_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the annotator flags; the command receives ``annotator_kind`` and ``annotator_options`` (AnnotatorOptions)."""

    @click.option(
        "--annotator",
        "annotator_kind",
        type=click.Choice(["caption", "mllm", "http"]),
        default="caption",
        show_default=True,
        help="caption: offline, caption words (+ --image-tags); mllm: a local Hugging Face model; http: an OpenAI-compatible endpoint.",
    )
    @click.option("--image-tags", is_flag=True, help="caption: add visual objects from the EfficientNet-Lite0 classifier.")
    @click.option("--model", help="mllm: model name or folder; http: served model name; caption: spaCy pipeline name.")
    @click.option("--endpoint", help="http: base URL of the API, e.g. http://localhost:8000/v1.")
    @click.option(
        "--model-api-key", "model_api_key", envvar="SSI_ANNOTATOR_API_KEY", help="http: bearer token [env: SSI_ANNOTATOR_API_KEY]."
    )
    @click.option("--batch-size", type=click.IntRange(min=1), help="Records per annotator batch.")
    @click.option("--concurrency", type=click.IntRange(min=1), help="http: requests in flight at once.")
    @click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="http: seconds per request.")
    @click.option("--no-image-check", is_flag=True,
                  help="Do not open each local image before annotating (by default a missing or corrupt one fails as image_unreadable).")
    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        from ssi_plugin.annotation.factory import AnnotatorOptions

        names = ("image_tags", "model", "endpoint", "batch_size", "concurrency", "timeout")
        options = {name: kwargs.pop(name) for name in names}
        kwargs["annotator_options"] = AnnotatorOptions(
            api_key=kwargs.pop("model_api_key"), check_images=not kwargs.pop("no_image_check"), **options
        )
        return command(**kwargs)

    return wrapper


def dataset_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add DATASET with --images-dir, --split and --limit; the command receives them as given."""

    @click.argument("dataset", type=click.Path(path_type=Path, exists=True))  # checked before any cluster is contacted
    @click.option("--images-dir", type=click.Path(path_type=Path), help="Folder of the images (default: the dataset file's folder).")
    @click.option("--split", help="Only this split (Karpathy: train, val, test, restval).")
    @click.option("--limit", type=click.IntRange(min=1), help="Only the first N records.")
    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        return command(**kwargs)

    return wrapper

