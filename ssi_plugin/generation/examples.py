"""Training examples: text -> identifier (+ rationale), read from JSONL or handed over by any iterable.

Accepted JSONL lines (one example per text; ``captions`` gives several)::

    {"text": "a dog on grass", "identifier": "objects: dog | scene: grass", "rationale": "...", "image_id": "7"}
    {"id": "7", "captions": ["..."], "ssi": {"id": "objects: dog | scene: grass", "rationale": "..."}}

The second form is a line of an annotation file (``ssi-plugin annotate``).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.errors import InputError


class TrainingExample(BaseModel):
    """One supervised pair; ``image_id`` defaults to the identifier (the trie then maps it to itself)."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(min_length=1)
    identifier: str = Field(min_length=1)
    rationale: str | None = None
    image_id: str | None = None


def read_examples(*paths: str | os.PathLike[str]) -> Iterator[TrainingExample]:
    """Examples of JSONL files, in order; a line that cannot be used is an ``InputError`` naming file and line."""
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"training file {path} does not exist")
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield from _examples_of(json.loads(line))
                except (ValueError, TypeError, AttributeError) as exc:
                    raise InputError(f"{path}:{number}: not a training example ({exc})") from None


def _examples_of(line: dict) -> Iterator[TrainingExample]:
    ssi = line.get("ssi")
    identifier = line.get("identifier") or (ssi.get("id") if isinstance(ssi, dict) else ssi)
    rationale = line.get("rationale") or (ssi.get("rationale") if isinstance(ssi, dict) else None)
    texts = line.get("captions") or [line.get("text") or line.get("query") or line.get("caption")]
    image_id = line.get("image_id") or line.get("id")
    if not identifier or not any(texts):
        raise ValueError("needs a text (text/query/caption/captions) and an identifier (identifier/ssi)")
    for text in texts:
        if isinstance(text, str) and text.strip():
            yield TrainingExample(text=text.strip(), identifier=identifier, rationale=rationale,
                                  image_id=None if image_id is None else str(image_id))


def numeric_identifiers(examples: Iterable[TrainingExample], *, seed: int = 0) -> list[TrainingExample]:
    """The GRACE-style baseline: each image's identifier replaced by an arbitrary number string.

    Numbers are a seeded shuffle of 1..n over images, so they carry no meaning
    (a sorted numbering would leak the identifiers' order into the ids).
    """
    examples = list(examples)
    images = sorted({example.image_id or example.identifier for example in examples})
    numbers = list(range(1, len(images) + 1))
    random.Random(seed).shuffle(numbers)
    number_of = dict(zip(images, numbers, strict=True))
    return [
        example.model_copy(update={"identifier": str(number_of[example.image_id or example.identifier]),
                                   "image_id": example.image_id or example.identifier})
        for example in examples
    ]


def trie_pairs(examples: Iterable[TrainingExample]) -> list[tuple[str, str]]:
    """``(identifier, image_id)`` pairs of the examples, one per image (its last identifier wins)."""
    identifier_of = {example.image_id or example.identifier: example.identifier for example in examples}
    return [(identifier, image_id) for image_id, identifier in identifier_of.items()]
