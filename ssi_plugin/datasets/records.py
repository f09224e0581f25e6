"""The unit every stage passes along: one image with its captions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ImageRecord(BaseModel):
    """One image of a dataset. ``image`` is a local path (absolute, resolved by the reader) or a URL."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    image: str | None = None
    captions: tuple[str, ...] = ()
    metadata: dict[str, object] = Field(default_factory=dict)
