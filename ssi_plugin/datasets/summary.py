"""What a dataset holds, counted in one pass: the check to run before a long ingest."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, Field

from ssi_plugin.datasets._paths import is_url
from ssi_plugin.datasets.records import ImageRecord

_EXAMPLES = 3


class DatasetSummary(BaseModel):
    records: int = 0
    captions: int = 0
    without_captions: int = 0
    without_image: int = 0
    remote_images: int = 0
    missing_image_files: int = Field(default=0, description="local image paths that do not exist")
    captions_per_image: dict[int, int] = Field(default_factory=dict, description="caption count -> images")
    splits: dict[str, int] = Field(default_factory=dict)
    examples_missing: list[str] = Field(default_factory=list, description="a few image paths that do not exist")


def summarize(records: Iterable[ImageRecord]) -> DatasetSummary:
    """Counts over ``records``; local image paths are checked on disk, URLs are not fetched."""
    summary = DatasetSummary()
    per_image: Counter[int] = Counter()
    splits: Counter[str] = Counter()
    for record in records:
        summary.records += 1
        summary.captions += len(record.captions)
        per_image[len(record.captions)] += 1
        summary.without_captions += not record.captions
        if "split" in record.metadata:
            splits[str(record.metadata["split"])] += 1
        if record.image is None:
            summary.without_image += 1
        elif is_url(record.image):
            summary.remote_images += 1
        elif not os.path.isfile(record.image):
            summary.missing_image_files += 1
            if len(summary.examples_missing) < _EXAMPLES:
                summary.examples_missing.append(record.image)
    summary.captions_per_image = dict(sorted(per_image.items()))
    summary.splits = dict(sorted(splits.items()))
    return summary
