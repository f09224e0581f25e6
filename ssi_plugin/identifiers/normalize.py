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
import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping

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
_WORDS = re.compile(r"\w+")
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


@functools.lru_cache(maxsize=65536)
def word_lemmas(word: str, pos: str) -> tuple[str, ...]:
    """lemminflect's lemmas of ``word`` as ``pos`` (``NOUN``, ``VERB``, ``ADJ``): its dictionary's, or for a word the
    dictionary lacks its rules'. Not for an adjective: the rules strip any "-ed", "-er" or "-est" ("fashioned" ->
    "fashione", "other" -> "oth", "stuffed" -> "stuff"), so an adjective the dictionary lacks gets no lemma (it is
    its own). Nor for a noun without the "-s" of an English plural: the rules read Latin plurals into it
    ("pepperoni" -> "pepperonus", "quinoa" -> "quinoum"), which no query says."""
    from lemminflect import getLemma

    rules = pos == "VERB" or (pos == "NOUN" and word.endswith("s"))
    return tuple(getLemma(word, pos, lemmatize_oov=rules))


def lemmatize_concept(text: str, slot: Slot) -> str | None:
    """The canonical concept for ``text`` in ``slot``: cleaned, head word lemmatized; None if unusable."""
    concept = clean_concept(text)
    if concept is None:
        return None
    words = re.split(r"([ -])", concept)  # keeps the separators at odd positions
    head = 0 if slot == "actions" else len(words) - 1
    if words[head].isalpha():
        lemmas = word_lemmas(words[head], _SLOT_POS[slot])
        if lemmas and lemmas[0]:
            words[head] = lemmas[0].lower()
    return clean_concept("".join(words))


FUNCTION_WORDS = frozenset(
    ["a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "no", "its", "his", "her",
     "their", "our", "my", "your", "it", "they", "he", "she", "we", "you", "i", "of", "in", "on", "at", "by", "for",
     "with", "without", "from", "to", "into", "onto", "over", "under", "above", "below", "behind", "beside", "between",
     "near", "through", "across", "along", "around", "against", "among", "up", "down", "out", "off", "and", "or",
     "but", "nor", "so", "than", "as", "while", "is", "are", "was", "were", "be", "been", "being", "has", "have",
     "had", "does", "do", "did", "very"]
)
"""Words that are never a concept of an identifier: a query's pairs of words that hold one are no concept either."""


@functools.lru_cache(maxsize=65536)
def _forms(word: str) -> tuple[str, ...]:
    from lemminflect import getAllLemmas

    return tuple(dict.fromkeys([word, *(lemma for lemmas in getAllLemmas(word).values() for lemma in lemmas)]))


@functools.lru_cache(maxsize=65536)
def _word(text: str) -> str | None:
    return clean_concept(text)


def _words(text: str) -> list[str]:
    return [word for word in map(_word, _WORDS.findall(text)) if word]


def word_forms(text: str) -> frozenset[str]:
    """The words of ``text`` and every lemma English gives them (``dogs`` -> ``dog``, ``ran`` -> ``run``)."""
    return frozenset(form for word in _words(text) for form in _forms(word))


@functools.lru_cache(maxsize=65536)
def _pair(first: str, second: str) -> str | None:
    return None if first in FUNCTION_WORDS or second in FUNCTION_WORDS else lemmatize_concept(f"{first} {second}", "objects")


def query_words(text: str) -> dict[str, frozenset[str]]:
    """Each word of a query, function words left out, with the concepts it could stand for: itself, its lemmas, and
    the pair it forms with each neighbour, the second word's noun lemma (``street lamps`` -> ``street lamp``).

    Read off the words alone, without a tagger: cheap enough for every query, and a word that is no concept of
    any image simply matches nothing.
    """
    words = _words(text)
    pairs: dict[str, set[str]] = {}
    for first, second in itertools.pairwise(words):
        if pair := _pair(first, second):
            pairs.setdefault(first, set()).add(pair)
            pairs.setdefault(second, set()).add(pair)
    return {word: frozenset((*_forms(word), *pairs.get(word, ()))) for word in words if word not in FUNCTION_WORDS}


def query_concepts(text: str) -> list[str]:
    """Every concept a query's words could stand for (``query_words``), in a stable order."""
    return concepts_of_words(query_words(text))


def concepts_of_words(words: Mapping[str, Iterable[str]]) -> list[str]:
    """Every concept of ``query_words``' answer, in a stable order."""
    return sorted(frozenset().union(*words.values()))


def build_ssi(
    slots: Mapping[Slot, Iterable[str]] | Mapping[str, Iterable[str]], *, lemmatize: bool = True, max_per_slot: int = MAX_CONCEPTS_PER_SLOT
) -> SSI:
    """An identifier from an annotator's concept lists, most salient first.

    Each concept is cleaned (and lemmatized unless ``lemmatize=False``, for
    callers whose words are lemmas already); unusable ones are dropped; the
    first ``max_per_slot`` distinct concepts of a slot are kept. Raises
    ``ValueError`` when no concept is left, or a slot name is unknown.
    """
    unknown = set(slots) - set(SLOTS)
    if unknown:
        raise ValueError(f"unknown slot(s) {', '.join(sorted(unknown))}; slots are {', '.join(SLOTS)}")
    kept: dict[Slot, tuple[str, ...]] = {}
    for slot in SLOTS:
        if slot not in slots:
            continue
        normalize = functools.partial(lemmatize_concept, slot=slot) if lemmatize else clean_concept
        concepts = dict.fromkeys(c for c in map(normalize, slots[slot]) if c)
        kept[slot] = tuple(concepts)[:max_per_slot]
    if not any(kept.values()):
        raise ValueError("no usable concept")
    return SSI(**kept, disambiguator=None)


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
