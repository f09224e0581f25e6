"""Training examples: text -> identifier (+ rationale), read from JSONL or handed over by any iterable.

Accepted JSONL lines (one example per text; ``captions`` gives several)::

    {"text": "a dog on grass", "identifier": "objects: dog | scene: grass", "rationale": "...", "image_id": "7"}
    {"id": "7", "captions": ["..."], "ssi": {"id": "objects: dog | scene: grass", "rationale": "..."}}

The second form is a line of an annotation file (``ssi-plugin annotate``).
"""

from __future__ import annotations

import json
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


def read_examples(path: str | Path) -> Iterator[TrainingExample]:
    """Examples of a JSONL file; a line that cannot be used is an ``InputError`` naming file and line."""
    path = Path(path)
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


def pseudo_queries(example: TrainingExample, n: int, *, rng: random.Random, word_dropout: float = 0.3) -> list[str]:
    """Up to ``n`` further inputs for the example's identifier, made from what its annotation already says.

    A query is another person's wording of the same picture, usually shorter than
    the caption and naming a few of its concepts. In turn: the rationale (a second
    sentence about the image), the identifier's concept words in a random order,
    then the caption with each word dropped with probability ``word_dropout``.
    Identifiers that are not SSIs (numeric ids) give no concept query. Duplicates
    of the text, or of each other, are left out, so fewer than ``n`` may come back.
    """
    from ssi_plugin.errors import InvalidIdentifier
    from ssi_plugin.identifiers import parse_ssi

    sources: list[str] = [example.rationale] if example.rationale else []
    try:
        words = [concept.partition(":")[2] for concept in parse_ssi(example.identifier).concepts]
        rng.shuffle(words)
        sources.append(" ".join(words))
    except InvalidIdentifier:
        pass
    caption = example.text.split()
    for _ in range(3 * n):
        kept = [word for word in caption if rng.random() >= word_dropout]
        sources.append(" ".join(kept if len(kept) >= 2 else caption[:2]))
    found: dict[str, None] = {}
    for text in sources:
        if text.strip() and text != example.text:
            found.setdefault(text, None)
        if len(found) == n:
            break
    return list(found)


def with_pseudo_queries(examples: Iterable[TrainingExample], n: int, *, seed: int = 0) -> list[TrainingExample]:
    """Each example followed by up to ``n`` pseudo-queries of the same identifier and image (seeded, reproducible)."""
    rng = random.Random(seed)
    augmented: list[TrainingExample] = []
    for example in examples:
        augmented.append(example)
        augmented += [example.model_copy(update={"text": text}) for text in pseudo_queries(example, n, rng=rng)]
    return augmented


def trie_pairs(examples: Iterable[TrainingExample]) -> list[tuple[str, str]]:
    """``(identifier, image_id)`` pairs of the examples, one per image (its last identifier wins)."""
    identifier_of = {example.image_id or example.identifier: example.identifier for example in examples}
    return [(identifier, image_id) for image_id, identifier in identifier_of.items()]
