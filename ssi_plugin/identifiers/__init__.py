"""Structured Semantic Identifiers: the model, its canonical string, normalization and collisions."""

from ssi_plugin.identifiers.collisions import (
    Assignment,
    CollisionReport,
    CollisionResolver,
)
from ssi_plugin.identifiers.normalize import (
    build_ssi,
    clean_concept,
    concepts_of_words,
    lemmatize_concept,
    normalize_rationale,
    query_concepts,
    query_words,
    word_forms,
    word_lemmas,
)
from ssi_plugin.identifiers.record import SSIRecord
from ssi_plugin.identifiers.ssi import SLOTS, SSI, Slot, identifier_words, parse_ssi

__all__ = [
    "SLOTS",
    "SSI",
    "Assignment",
    "CollisionReport",
    "CollisionResolver",
    "SSIRecord",
    "Slot",
    "build_ssi",
    "clean_concept",
    "concepts_of_words",
    "identifier_words",
    "lemmatize_concept",
    "normalize_rationale",
    "parse_ssi",
    "query_concepts",
    "query_words",
    "word_forms",
    "word_lemmas",
]
