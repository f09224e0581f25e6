"""The synthetic corpus: deterministic, captions that describe the drawn contents, idempotent output."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ssi_plugin.datasets import read_dataset
from ssi_plugin.datasets.synthetic import (
    COLOURS,
    OBJECTS,
    SCENES,
    draw_scene,
    generate_synthetic_corpus,
    synthetic_record,
)
from ssi_plugin.errors import InputError


def _mentions(caption: str, words: tuple[str, ...]) -> bool:
    text = f" {caption.lower().rstrip('.')} "
    return any(f" {word} " in text or f" {word}," in text or f" {word}:" in text for word in words)


def test_same_seed_same_corpus_and_prefix_property(tmp_path):
    a = generate_synthetic_corpus(tmp_path / "a", 30, seed=11, with_images=False, progress=False)
    b = generate_synthetic_corpus(tmp_path / "b", 50, seed=11, with_images=False, progress=False)
    c = generate_synthetic_corpus(tmp_path / "c", 30, seed=12, with_images=False, progress=False)
    lines_a = a.read_text(encoding="utf-8").splitlines()
    assert lines_a == b.read_text(encoding="utf-8").splitlines()[:30]
    captions_c = [json.loads(line)["captions"] for line in c.read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line)["captions"] for line in lines_a] != captions_c


def test_captions_are_distinct_and_name_every_object_colour_and_the_scene():
    for index in range(200):
        record, contents = synthetic_record(5, index, captions_per_image=5)
        assert len(record.captions) == 5
        assert len(set(record.captions)) == 5
        for caption in record.captions:
            for obj in contents.objects:
                assert _mentions(caption, OBJECTS[obj.name].words), (caption, obj)
                assert _mentions(caption, COLOURS[obj.colour][0]), (caption, obj)
            assert any(
                phrase.lower() in caption.lower()
                for phrase in SCENES[contents.scene].nouns + SCENES[contents.scene].places
            ), caption


def test_contents_are_recorded_on_each_line(tmp_path):
    dataset = generate_synthetic_corpus(tmp_path, 5, seed=1, captions_per_image=3, with_images=False, progress=False)
    records = list(read_dataset(dataset))
    assert [r.id for r in records] == [f"s1-{i:07d}" for i in range(5)]
    for record in records:
        assert record.image is None
        assert len(record.captions) == 3
        contents = record.metadata["contents"]
        assert contents["scene"] in SCENES
        assert 1 <= len(contents["objects"]) <= 3
        assert {"name", "colour", "size", "action"} <= set(contents["objects"][0])


def test_images_are_written_and_show_the_object_colour(tmp_path):
    dataset = generate_synthetic_corpus(tmp_path, 12, seed=4, image_size=96, progress=False)
    for record in read_dataset(dataset):
        with Image.open(record.image) as image:
            assert image.size == (96, 96)
            pixels = image.convert("RGB").getcolors(96 * 96)
        for obj in record.metadata["contents"]["objects"]:
            target = COLOURS[obj["colour"]][1]
            near = sum(count for count, rgb in pixels if sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) < 60)
            assert near > 0, (record.id, obj)


def test_rerun_is_idempotent_and_keeps_drawn_images(tmp_path):
    dataset = generate_synthetic_corpus(tmp_path, 6, seed=2, progress=False)
    text = dataset.read_text(encoding="utf-8")
    images = sorted((tmp_path / "images").rglob("*.jpg"))
    stamps = [p.stat().st_mtime_ns for p in images]
    images[0].unlink()
    assert generate_synthetic_corpus(tmp_path, 6, seed=2, progress=False).read_text(encoding="utf-8") == text
    assert sorted((tmp_path / "images").rglob("*.jpg")) == images
    assert [p.stat().st_mtime_ns for p in images[1:]] == stamps[1:]


def test_draw_scene_is_deterministic():
    _, contents = synthetic_record(9, 3)
    assert draw_scene(contents, size=64, seed=3).tobytes() == draw_scene(contents, size=64, seed=3).tobytes()


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 3, "captions_per_image": 0}, {"n": 3, "image_size": 4}])
def test_bad_settings_are_input_errors(tmp_path, kwargs):
    with pytest.raises(InputError):
        generate_synthetic_corpus(tmp_path, seed=1, progress=False, **kwargs)
