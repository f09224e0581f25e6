"""Annotators write an image's identifier and rationale; the annotate job runs one over a dataset.

    Annotator                    the contract: annotate(records) -> one Annotation | AnnotationFailure each
    CaptionAnnotator             caption words (spaCy) + optional image tags (EfficientNet-Lite0); offline default
    MLLMAnnotator                a Hugging Face image-text-to-text (or text) model prompted for JSON
    HTTPAnnotator                an OpenAI-compatible chat-completions endpoint
    annotate_dataset(...)        records -> JSONL with resume, failure file and progress

Importing this package loads no model: each annotator imports its libraries when first used.
"""

from ssi_plugin.annotation.base import Annotation, AnnotationFailure, AnnotationResult, Annotator, FailureReason

__all__ = ["Annotation", "AnnotationFailure", "AnnotationResult", "Annotator", "FailureReason"]
