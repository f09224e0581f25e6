"""The SSI model: canonical string, strict parsing, normalization, collisions, annotation lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ssi_plugin.errors import InputError, InvalidIdentifier
from ssi_plugin.identifiers import (
    SSI,
    CollisionResolver,
    SSIRecord,
    build_ssi,
    clean_concept,
    lemmatize_concept,
    normalize_rationale,
    parse_ssi,
)

EXAMPLE = "objects: dog, frisbee | actions: catch, jump | scene: park"


def test_canonical_string_has_fixed_slot_order_and_omits_empty_slots() -> None:
    ssi = SSI(scene=("park",), actions=("jump", "catch"), objects=("frisbee", "dog"))
    assert ssi.id == EXAMPLE
    assert str(ssi) == EXAMPLE


def test_concepts_are_sorted_and_unique_so_equal_sets_give_equal_identifiers() -> None:
    assert SSI(objects=("frisbee", "dog", "dog")) == SSI(objects=("dog", "frisbee"))


def test_slot_prefixed_concepts_follow_canonical_order() -> None:
    ssi = parse_ssi("objects: dog | attributes: brown, small | scene: park | #2")
    assert ssi.concepts == ("objects:dog", "attributes:brown", "attributes:small", "scene:park")
    assert ssi.slots() == {"objects": ("dog",), "actions": (), "attributes": ("brown", "small"), "scene": ("park",)}


def test_disambiguator_is_the_last_segment_and_not_a_concept() -> None:
    ssi = parse_ssi("objects: dog | #3")
    assert ssi.disambiguator == 3
    assert ssi.base.id == "objects: dog"
    assert ssi.with_disambiguator(2).id == "objects: dog | #2"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("objects:dog", "not 'slot: concept"),
        ("scene: park | objects: dog", "out of order"),
        ("objects: dog | objects: cat", "appears twice"),
        ("colors: red", "unknown slot"),
        ("objects: frisbee, dog", "sorted and unique"),
        ("objects: dog, dog", "sorted and unique"),
        ("objects: Dog", "lower-case"),
        ("objects: dog,cat", "lower-case"),
        ("objects: ", "lower-case"),
        ("objects: hot  dog", "lower-case"),
        ("objects: dog | #1", "integer >= 2"),
        ("objects: dog | #02", "integer >= 2"),
        ("#2 | objects: dog", "last segment"),
        ("#2", "at least one concept"),
        ("objects: a b c d e", "more than 4 words"),
        ("objects: " + ", ".join(f"thing{i}" for i in range(9)), "more than 8"),
        ("objects: dog |scene: park", "lower-case"),
    ],
)
def test_parse_rejects_non_canonical_text_naming_the_problem(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        parse_ssi(text)
    assert reason in str(info.value)
    assert isinstance(info.value, InputError)


def test_model_refuses_an_empty_identifier() -> None:
    with pytest.raises(ValidationError, match="at least one concept"):
        SSI()


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_phrase = st.lists(_word, min_size=1, max_size=4).flatmap(
    lambda words: st.lists(st.sampled_from([" ", "-"]), min_size=len(words) - 1, max_size=len(words) - 1).map(
        lambda seps: "".join(w + s for w, s in zip(words, [*seps, ""], strict=True))
    )
)
_slot = st.lists(_phrase.filter(lambda c: len(c) <= 40), max_size=8)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(objects=_slot, actions=_slot, attributes=_slot, scene=_slot, number=st.none() | st.integers(2, 10_000))
def test_parse_inverts_serialize(objects, actions, attributes, scene, number) -> None:
    if not (objects or actions or attributes or scene):
        return
    ssi = SSI(objects=objects, actions=actions, attributes=attributes, scene=scene, disambiguator=number)
    assert parse_ssi(ssi.id) == ssi
    assert parse_ssi(ssi.id).id == ssi.id


@pytest.mark.parametrize(
    ("text", "slot", "expected"),
    [
        ("Dogs", "objects", "dog"),
        ("fire_hydrants", "objects", "fire hydrant"),
        ("T-Shirts", "objects", "t-shirt"),
        ("children", "objects", "child"),
        ("jumping", "actions", "jump"),
        ("jumping over", "actions", "jump over"),
        ("Café", "scene", "cafe"),
        ("bigger", "attributes", "big"),
        ("old-fashioned", "attributes", "old-fashioned"),  # lemminflect's rules alone would strip "-ed": "old-fashione"
        ("stuffed", "attributes", "stuffed"),
        # nouns lemminflect's dictionary lacks: its rules take an English plural's "-s" off, but read a Latin
        # plural into a word without one
        ("frisbees", "objects", "frisbee"),
        ("pepperoni", "objects", "pepperoni"),
        ("macula", "objects", "macula"),
        ("  red ", "attributes", "red"),
        ("!!!", "objects", None),
        ("", "objects", None),
        ("a very long phrase of many words", "objects", None),
    ],
)
def test_lemma_normalization(text: str, slot: str, expected: str | None) -> None:
    assert lemmatize_concept(text, slot) == expected  # type: ignore[arg-type]


def test_cleaning_never_invents_words() -> None:
    assert clean_concept("Hot-Dog / Bun") == "hot-dog bun"
    assert clean_concept("women's  hats") == "womens hats"
    assert clean_concept("汽车") is None


def test_build_ssi_keeps_the_first_salient_concepts_then_sorts() -> None:
    ssi = build_ssi({"objects": ["zebra", "Dogs", "dog", "apple", "cat"]}, max_per_slot=3)
    assert ssi.objects == ("apple", "dog", "zebra")  # "cat" came fourth: not salient enough


def test_build_ssi_with_nothing_usable_is_an_error_not_an_empty_identifier() -> None:
    with pytest.raises(ValueError, match="no usable concept"):
        build_ssi({"objects": ["!!!", ""], "scene": []})
    with pytest.raises(ValueError, match="unknown slot"):
        build_ssi({"colour": ["red"]})


def test_rationale_is_one_sentence() -> None:
    assert normalize_rationale("A dog  jumps.\nIt is happy. Really.") == "A dog jumps."
    assert normalize_rationale("no period") == "no period."
    assert normalize_rationale("   ") is None
    assert len(normalize_rationale("word " * 200) or "") <= 300


def test_first_image_keeps_its_identifier_and_later_ones_are_disambiguated() -> None:
    resolver = CollisionResolver()
    ssi = parse_ssi("objects: dog | scene: park")
    first = resolver.assign("a", ssi, reserve=["objects:ball"])
    second = resolver.assign("b", ssi, reserve=["objects:dog", "objects:ball"])
    third = resolver.assign("c", ssi, reserve=["objects:ball"])
    fourth = resolver.assign("d", ssi)
    assert first.ssi.id == "objects: dog | scene: park" and first.collision is None
    assert second.ssi.id == "objects: ball, dog | scene: park" and second.collision == "concept"
    assert third.ssi.id == "objects: dog | scene: park | #2" and third.collision == "suffix"
    assert fourth.ssi.id == "objects: dog | scene: park | #3"
    report = resolver.report()
    assert (report.images, report.collided, report.distinct_base_identifiers, report.largest_group) == (4, 3, 1, 4)
    assert report.collision_rate == pytest.approx(0.75)
    assert report.resolved_by_concept == 1 and report.resolved_by_suffix == 2


def test_assignment_is_idempotent_and_deterministic() -> None:
    ssis = [parse_ssi(t) for t in ("objects: dog", "objects: dog", "objects: cat", "objects: dog")]

    def run() -> list[str]:
        resolver = CollisionResolver()
        return [resolver.assign(str(i), s).ssi.id for i, s in enumerate(ssis)]

    assert run() == run()
    resolver = CollisionResolver()
    once = resolver.assign("x", ssis[0])
    assert resolver.assign("x", ssis[0]) == once
    assert len(resolver) == 1 and resolver.report().collided == 0


def test_resumed_resolver_continues_without_reusing_identifiers() -> None:
    ssi = parse_ssi("objects: dog")
    first_run = CollisionResolver()
    earlier = [("a", first_run.assign("a", ssi)), ("b", first_run.assign("b", ssi))]
    resumed = CollisionResolver()
    resumed.register_all(earlier)
    assert resumed.assign("c", ssi).ssi.id == "objects: dog | #3"
    with pytest.raises(InputError, match="held by both"):
        resumed.register("z", earlier[0][1])


def test_annotation_line_round_trips_and_has_the_index_layout() -> None:
    resolver = CollisionResolver()
    resolver.assign("a", parse_ssi(EXAMPLE))
    assignment = resolver.assign("b", parse_ssi(EXAMPLE))
    record = SSIRecord(
        id="b",
        ssi=assignment.ssi,
        base=assignment.base,
        collision=assignment.collision,
        rationale="The caption names a dog catching a frisbee in a park. Extra.",
        annotator="caption",
        version="caption/1",
        caption="A dog catches a frisbee in the park.",
    )
    line = json.loads(json.dumps(record.to_line()))
    assert line["ssi"]["id"] == EXAMPLE + " | #2"
    assert line["ssi"]["objects"] == ["dog", "frisbee"] and line["ssi"]["attributes"] == []
    assert line["ssi"]["concepts"][0] == "objects:dog"
    assert line["ssi"]["rationale"] == "The caption names a dog catching a frisbee in a park."
    assert line["collision"] == {"kind": "suffix", "base": EXAMPLE}
    assert SSIRecord.from_line(line) == record
    assert SSIRecord.from_line(line).assignment == assignment
