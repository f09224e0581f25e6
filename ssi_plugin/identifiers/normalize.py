"""From an annotator's free words to canonical concepts and a one-sentence rationale.

Annotators (a spaCy pipeline, a vision-language model, a remote endpoint) write
``Dogs``, ``jumping``, ``Café`` or ``fire_hydrants``; the identifier holds
``dog``, ``jump``, ``cafe``, ``fire hydrant``. Normalization only rewrites the
annotator's words (case, accents, separators, inflection); it never adds one.

Lemmas come from lemminflect with the part of speech the slot implies (objects
and scene: noun, actions: verb, attributes: adjective), applied to the head
word: the last word of a noun or adjective phrase, the first of a verb phrase
(``fire hydrants`` -> ``fire hydrant``, ``jumping over`` -> ``jump over``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from ssi_plugin.identifiers.ssi import (
    MAX_CONCEPTS_PER_SLOT,
    SLOTS,
    SSI,
    Slot,
    concept_problem,
)

MAX_RATIONALE_CHARS = 300

_SLOT_POS: dict[Slot, str] = {"objects": "NOUN", "scene": "NOUN", "actions": "VERB", "attributes": "ADJ"}
_NOT_CONCEPT_CHARS = re.compile(r"[^a-z0-9 -]+")
_SPACES = re.compile(r"\s+")
_LOOSE_HYPHENS = re.compile(r" ?-[ -]*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def clean_concept(text: str) -> str | None:
    """Lower-case ASCII letters, digits, single spaces and hyphens; None when nothing valid is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    ascii_text = ascii_text.replace("_", " ").replace("/", " ")
    ascii_text = _NOT_CONCEPT_CHARS.sub(" ", ascii_text.replace("'", ""))
    ascii_text = _LOOSE_HYPHENS.sub("-", _SPACES.sub(" ", ascii_text)).strip(" -")
    if not ascii_text or concept_problem(ascii_text):
        return None
    return ascii_text


@functools.cache
def _lemmatizer() -> Callable[[str, str], tuple[str, ...]]:
    from lemminflect import getLemma

    return functools.partial(getLemma, lemmatize_oov=True)


def lemmatize_concept(text: str, slot: Slot) -> str | None:
    """The canonical concept for ``text`` in ``slot``: cleaned, head word lemmatized; None if unusable."""
    concept = clean_concept(text)
    if concept is None:
        return None
    words = re.split(r"([ -])", concept)  # keeps the separators at odd positions
    head = 0 if slot == "actions" else len(words) - 1
    if words[head].isalpha():
        lemmas = _lemmatizer()(words[head], _SLOT_POS[slot])
        if lemmas and lemmas[0]:
            words[head] = lemmas[0].lower()
    return clean_concept("".join(words))


def build_ssi(slots: Mapping[str, Iterable[str]], *, lemmatize: bool = True, max_per_slot: int = MAX_CONCEPTS_PER_SLOT) -> SSI:
    """An identifier from an annotator's concept lists, most salient first.

    Each concept is cleaned (and lemmatized unless ``lemmatize=False``, for
    callers whose words are lemmas already); unusable ones are dropped; the
    first ``max_per_slot`` distinct concepts of a slot are kept. Raises
    ``ValueError`` when no concept is left, or a slot name is unknown.
    """
    unknown = set(slots) - set(SLOTS)
    if unknown:
        raise ValueError(f"unknown slot(s) {', '.join(sorted(unknown))}; slots are {', '.join(SLOTS)}")
    kept: dict[str, tuple[str, ...]] = {}
    for slot, words in slots.items():
        normalize = functools.partial(lemmatize_concept, slot=slot) if lemmatize else clean_concept
        concepts = dict.fromkeys(c for c in map(normalize, words) if c)
        kept[slot] = tuple(concepts)[:max_per_slot]
    if not any(kept.values()):
        raise ValueError("no usable concept")
    return SSI(**kept)


def normalize_rationale(text: str) -> str | None:
    """One sentence: first sentence of ``text``, single-spaced, at most 300 characters, ending in a period."""
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return None
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
    if len(sentence) > MAX_RATIONALE_CHARS:
        sentence = sentence[: MAX_RATIONALE_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;: ")
    if not any(ch.isalnum() for ch in sentence):
        return None
    return sentence if sentence[-1] in ".!?" else sentence + "."
