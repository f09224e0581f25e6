"""The demo set: real images from installed packages with hand-written captions, written idempotently."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ssi_plugin.datasets import read_dataset
from ssi_plugin.demo_data import demo_images, materialize_demo_dataset


def test_every_demo_image_has_several_distinct_captions():
    images = demo_images()
    assert len(images) >= 20
    assert len({image.id for image in images}) == len(images)
    for image in images:
        assert len(image.captions) >= 4, image.id
        assert len(set(image.captions)) == len(image.captions), image.id


def test_queries_are_paraphrases_not_copies_of_the_metadata_caption():
    for image in demo_images():
        first, *queries = image.captions
        for query in queries:
            assert query.lower() not in first.lower(), (image.id, query)


def test_materialize_writes_readable_images_and_a_dataset(tmp_path):
    dataset = materialize_demo_dataset(tmp_path / "demo")
    assert dataset == tmp_path / "demo" / "dataset.jsonl"
    records = list(read_dataset(dataset))
    assert [r.id for r in records] == [image.id for image in demo_images()]
    for record in records:
        assert len(record.captions) >= 4
        assert record.metadata["licence"]
        with Image.open(record.image) as image:
            image.verify()
    with Image.open(tmp_path / "demo" / "images" / "horse.png") as horse:
        assert horse.mode == "RGB"  # transparency flattened


def test_materialize_is_idempotent(tmp_path):
    dataset = materialize_demo_dataset(tmp_path)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "images").iterdir()}
    first_text = dataset.read_text(encoding="utf-8")
    os.remove(tmp_path / "images" / "coffee.png")
    again = materialize_demo_dataset(tmp_path)
    assert again == dataset
    assert dataset.read_text(encoding="utf-8") == first_text
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "images").iterdir()}
    assert set(after) == set(before)
    unchanged = {p for p in before if p.name != "coffee.png"}
    assert all(after[p] == before[p] for p in unchanged)  # untouched, not rewritten
    assert after[tmp_path / "images" / "coffee.png"][0] == before[tmp_path / "images" / "coffee.png"][0]


def test_dataset_folder_can_be_moved(tmp_path):
    materialize_demo_dataset(tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    record = next(read_dataset(tmp_path / "b"))
    assert Path(record.image).is_file()
