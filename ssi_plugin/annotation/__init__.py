"""Annotators write an image's identifier and rationale; the annotate job runs one over a dataset.

    Annotator                    the contract: annotate(records) -> one Annotation | AnnotationFailure each
    CaptionAnnotator             caption words (spaCy) + optional image tags (EfficientNet-Lite0); offline default
    MLLMAnnotator                a local Hugging Face image-text-to-text (or text-only chat) model prompted for JSON
    HTTPAnnotator                an OpenAI-compatible chat-completions endpoint
    ImageCheckedAnnotator        any annotator, given only records whose local image opens (others: image_unreadable)
    create_annotator(kind, ...)  one of the three by name, options checked, images checked unless check_images=False
    annotate_dataset(...)        records -> JSONL with resume, failure file, collision report and progress

Importing this package loads no model library: each annotator imports spaCy,
torch or transformers when first used.
"""

from ssi_plugin.annotation.base import (
    Annotation,
    AnnotationFailure,
    AnnotationResult,
    Annotator,
    FailureReason,
)
from ssi_plugin.annotation.caption import CaptionAnnotator
from ssi_plugin.annotation.factory import AnnotatorOptions, create_annotator
from ssi_plugin.annotation.http import HTTPAnnotator
from ssi_plugin.annotation.image_check import ImageCheckedAnnotator
from ssi_plugin.annotation.job import AnnotateSummary, annotate_dataset
from ssi_plugin.annotation.mllm import MLLMAnnotator

__all__ = [
    "AnnotateSummary",
    "Annotation",
    "AnnotationFailure",
    "AnnotationResult",
    "Annotator",
    "AnnotatorOptions",
    "CaptionAnnotator",
    "FailureReason",
    "HTTPAnnotator",
    "ImageCheckedAnnotator",
    "MLLMAnnotator",
    "annotate_dataset",
    "create_annotator",
]
