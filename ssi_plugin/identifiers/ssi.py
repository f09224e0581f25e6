"""The Structured Semantic Identifier (SSI) and its one canonical string form.

An SSI names an image by the concepts it shows, in four slots of fixed order:
``objects``, ``actions``, ``attributes``, ``scene``. The canonical string is
plain words, so a language model can write it without new tokens, and it is
simple enough to split in an ingest script (painless) without a parser::

    objects: dog, frisbee | actions: catch, jump | attributes: red | scene: park
    objects: dog | scene: park | #2

Grammar (every separator is exact, including its single spaces)::

    identifier    := segment *( " | " segment ) [ " | " disambiguator ]
    segment       := slot ": " concept *( ", " concept )
    slot          := "objects" | "actions" | "attributes" | "scene"
    concept       := word *( ( " " | "-" ) word )      at most 4 words, 40 characters
    word          := 1*( "a"-"z" | "0"-"9" )
    disambiguator := "#" integer                         integer >= 2, no leading zero

Rules that make the form canonical (``parse`` rejects anything else):

- Slots appear in the order above, each at most once; an empty slot is
  omitted; at least one concept in all (never an empty identifier).
- A concept is lower-case ASCII letters and digits, words joined by one space
  or one hyphen (``fire hydrant``, ``t-shirt``); so ``,``, ``|``, ``:`` and
  ``#`` never occur inside a concept and splitting on ``" | "`` then ``", "``
  is enough. At most 8 concepts per slot, no duplicates.
- Concepts inside a slot are **sorted** (plain code-point order, the same in
  Python and Java/painless). Salience decides *which* concepts an annotator
  keeps; it does not decide their order. Why sorted: the retrieval model must
  learn to write the identifier from a query, usually a *different* caption of
  the image than the one that was annotated. Salience order follows the wording
  of that one caption, which a query cannot predict; sorted order is a function
  of the concept set alone, so equal concept sets give equal strings, the prefix
  trie has fewer paths, and a collision means two images really share their
  concepts. ``benchmarks/annotation.py`` measures both orders (identifier
  agreement across captions of one image, collision rate).
- The optional last segment ``#n`` is the collision disambiguator (see
  ``collisions.py``): the n-th image of a corpus whose concepts all coincide
  with an earlier image's. It is not a concept and never enters ``concepts``.

Slot-prefixed concepts (``objects:dog``, no space) are the ``ssi.concepts``
keyword values of the index.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ssi_plugin.errors import InvalidIdentifier

Slot = Literal["objects", "actions", "attributes", "scene"]
SLOTS: tuple[Slot, ...] = ("objects", "actions", "attributes", "scene")

MAX_CONCEPTS_PER_SLOT = 8
MAX_CONCEPT_WORDS = 4
MAX_CONCEPT_CHARS = 40

SEGMENT_SEPARATOR = " | "
CONCEPT_SEPARATOR = ", "
SLOT_SEPARATOR = ": "

CONCEPT_PATTERN = re.compile(r"[a-z0-9]+(?:[ -][a-z0-9]+)*")
_DISAMBIGUATOR_PATTERN = re.compile(r"#([1-9][0-9]*)")


def concept_problem(concept: str) -> str | None:
    """Why ``concept`` is not a valid concept, or None when it is."""
    if not CONCEPT_PATTERN.fullmatch(concept):
        return (
            f"concept {concept!r} must be lower-case ASCII letters and digits, "
            "words joined by single spaces or hyphens"
        )
    if len(concept) > MAX_CONCEPT_CHARS:
        return f"concept {concept!r} is longer than {MAX_CONCEPT_CHARS} characters"
    if len(re.split(r"[ -]", concept)) > MAX_CONCEPT_WORDS:
        return f"concept {concept!r} has more than {MAX_CONCEPT_WORDS} words"
    return None


class SSI(BaseModel):
    """One identifier. Concepts are stored sorted and unique; equal sets make equal identifiers.

    Build it from an annotator's words with ``ssi_plugin.identifiers.normalize.build_ssi``
    (cleans and lemmatizes); construct it directly only from already-canonical concepts.
    """

    model_config = ConfigDict(frozen=True)

    objects: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    scene: tuple[str, ...] = ()
    disambiguator: int | None = Field(default=None, ge=2)

    @field_validator("objects", "actions", "attributes", "scene")
    @classmethod
    def _canonical_slot(cls, concepts: tuple[str, ...]) -> tuple[str, ...]:
        for concept in concepts:
            if problem := concept_problem(concept):
                raise ValueError(problem)
        unique = tuple(sorted(set(concepts)))
        if len(unique) > MAX_CONCEPTS_PER_SLOT:
            raise ValueError(f"a slot holds at most {MAX_CONCEPTS_PER_SLOT} concepts, got {len(unique)}")
        return unique

    @model_validator(mode="after")
    def _not_empty(self) -> SSI:
        if not any(getattr(self, slot) for slot in SLOTS):
            raise ValueError("an identifier needs at least one concept")
        return self

    @property
    def id(self) -> str:
        """The canonical string (``ssi.id`` in the index)."""
        segments = [
            f"{slot}{SLOT_SEPARATOR}{CONCEPT_SEPARATOR.join(concepts)}"
            for slot, concepts in self.slots().items()
            if concepts
        ]
        if self.disambiguator is not None:
            segments.append(f"#{self.disambiguator}")
        return SEGMENT_SEPARATOR.join(segments)

    def __str__(self) -> str:
        return self.id

    def slots(self) -> dict[Slot, tuple[str, ...]]:
        """All four slots in canonical order, empty ones included."""
        return {slot: getattr(self, slot) for slot in SLOTS}

    @property
    def concepts(self) -> tuple[str, ...]:
        """Slot-prefixed concepts in canonical order, e.g. ``("objects:dog", "scene:park")``."""
        return tuple(f"{slot}:{concept}" for slot, concepts in self.slots().items() for concept in concepts)

    @property
    def base(self) -> SSI:
        """The identifier without its disambiguator."""
        return self if self.disambiguator is None else self.model_copy(update={"disambiguator": None})

    def with_concept(self, slot: Slot, concept: str) -> SSI:
        """A new identifier with one more concept in ``slot`` (validated, re-sorted)."""
        return SSI(**{**self.slots(), slot: (*getattr(self, slot), concept)}, disambiguator=self.disambiguator)

    def with_disambiguator(self, number: int) -> SSI:
        return SSI(**self.slots(), disambiguator=number)

    @classmethod
    def parse(cls, text: str) -> SSI:
        """Parse a canonical string; raise ``InvalidIdentifier`` naming the first problem."""
        return parse_ssi(text)


def identifier_words(identifier: str) -> list[str]:
    """The concepts of a canonical identifier, slots and disambiguator dropped: a split, no validation (for
    identifiers a trie already holds, where ``parse_ssi`` over a million of them would cost seconds)."""
    return [concept for segment in identifier.split(SEGMENT_SEPARATOR) if SLOT_SEPARATOR in segment
            for concept in segment.partition(SLOT_SEPARATOR)[2].split(CONCEPT_SEPARATOR)]


def parse_ssi(text: str) -> SSI:
    """Inverse of ``SSI.id``: ``parse_ssi(x.id) == x``. Strict: non-canonical input is an error."""
    if not isinstance(text, str) or not text:
        raise InvalidIdentifier(text, "identifier is empty")
    slots: dict[str, tuple[str, ...]] = {}
    disambiguator: int | None = None
    segments = text.split(SEGMENT_SEPARATOR)
    for position, segment in enumerate(segments):
        if segment.startswith("#"):
            match = _DISAMBIGUATOR_PATTERN.fullmatch(segment)
            if not match:
                raise InvalidIdentifier(text, f"disambiguator {segment!r} must be '#' and an integer >= 2")
            if position != len(segments) - 1:
                raise InvalidIdentifier(text, f"disambiguator {segment!r} must be the last segment")
            disambiguator = int(match.group(1))
            if disambiguator < 2:
                raise InvalidIdentifier(text, f"disambiguator {segment!r} must be '#' and an integer >= 2")
            continue
        slot, separator, body = segment.partition(SLOT_SEPARATOR)
        if not separator:
            raise InvalidIdentifier(text, f"segment {segment!r} is not 'slot: concept, ...' nor '#n'")
        if slot not in SLOTS:
            raise InvalidIdentifier(text, f"unknown slot {slot!r}; slots are {', '.join(SLOTS)}")
        if slot in slots:
            raise InvalidIdentifier(text, f"slot {slot!r} appears twice")
        if slots and SLOTS.index(slot) < SLOTS.index(list(slots)[-1]):
            raise InvalidIdentifier(text, f"slot {slot!r} is out of order; the order is {', '.join(SLOTS)}")
        concepts = tuple(body.split(CONCEPT_SEPARATOR))
        for concept in concepts:
            if problem := concept_problem(concept):
                raise InvalidIdentifier(text, f"in slot {slot!r}: {problem}")
        if list(concepts) != sorted(set(concepts)):
            raise InvalidIdentifier(
                text, f"concepts of slot {slot!r} must be sorted and unique: {CONCEPT_SEPARATOR.join(sorted(set(concepts)))}"
            )
        if len(concepts) > MAX_CONCEPTS_PER_SLOT:
            raise InvalidIdentifier(text, f"slot {slot!r} holds more than {MAX_CONCEPTS_PER_SLOT} concepts")
        slots[slot] = concepts
    if not slots:
        raise InvalidIdentifier(text, "an identifier needs at least one concept")
    return SSI(**slots, disambiguator=disambiguator)

