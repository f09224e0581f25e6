"""Reading the three dataset formats, and the errors a user sees for broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ssi_plugin.datasets import ImageRecord, detect_format, read_dataset, write_jsonl
from ssi_plugin.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"
IMAGES = FIXTURES / "images"


def _by_id(records):
    return {record.id: record for record in records}


# --- JSONL -----------------------------------------------------------------------------------------


def test_jsonl_paths_resolve_against_the_file_and_urls_stay():
    records = _by_id(read_dataset(FIXTURES / "tiny.jsonl"))
    assert list(records) == ["red", "2", "green", "blue"]
    assert records["red"].image == str(IMAGES / "red.png")
    assert Path(records["red"].image).is_file()
    assert records["2"].image == "https://example.org/photos/2.jpg"


def test_jsonl_captions_are_cleaned_and_a_single_string_is_one_caption():
    records = _by_id(read_dataset(FIXTURES / "tiny.jsonl"))
    assert records["red"].captions == ("A red square on its own.", "Crimson tile, nothing else.")
    assert records["green"].captions == ("One caption given as a plain string.",)


def test_jsonl_record_without_captions_is_still_yielded():
    records = _by_id(read_dataset(FIXTURES / "tiny.jsonl"))
    assert records["blue"].captions == ()
    assert records["blue"].image == str(IMAGES / "blue.png")


def test_jsonl_extra_keys_become_metadata():
    records = _by_id(read_dataset(FIXTURES / "tiny.jsonl"))
    assert records["green"].metadata == {"split": "test", "source": "fixture"}


def test_jsonl_images_dir_overrides_the_base(tmp_path):
    records = _by_id(read_dataset(FIXTURES / "tiny.jsonl", images_dir=tmp_path))
    assert records["red"].image == str(tmp_path / "images" / "red.png")


def test_split_filter_keeps_only_that_split():
    assert [r.id for r in read_dataset(FIXTURES / "tiny.jsonl", split="test")] == ["2", "green"]
    assert [r.id for r in read_dataset(FIXTURES / "tiny.jsonl", split=["train", "test"])] == ["red", "2", "green"]


def test_unknown_split_is_an_error_listing_the_splits_present():
    with pytest.raises(InputError, match=r"no record in split tset \(splits present: test, train\)"):
        list(read_dataset(FIXTURES / "tiny.jsonl", split="tset"))


def test_a_folder_stands_for_its_dataset_jsonl(tmp_path):
    write_jsonl([ImageRecord(id="a", captions=("x",))], tmp_path / "dataset.jsonl")
    assert [r.id for r in read_dataset(tmp_path)] == ["a"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"bad\.jsonl line 2: Invalid JSON"),
        ('["a", "b"]', r"bad\.jsonl line 2: Input should be an object"),
        ('{"image": "x.jpg", "captions": ["c"]}', r"bad\.jsonl line 2: id: Field required"),
        ('{"id": "  ", "captions": ["c"]}', r"bad\.jsonl line 2: id: .*must not be blank"),
        ('{"id": "b", "captions": ["ok", 3]}', r"bad\.jsonl line 2: captions\.1: Input should be a valid string$"),
        ('{"id": "b", "image": 5}', r"bad\.jsonl line 2: image: "),
        ('{"id": "a", "captions": ["again"]}', r"bad\.jsonl line 2: id 'a' already used at line 1"),
    ],
)
def test_malformed_jsonl_names_the_file_and_line(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "image": "a.jpg", "captions": ["fine"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        list(read_dataset(bad))


def test_write_jsonl_round_trips_and_keeps_the_folder_relocatable(tmp_path):
    original = list(read_dataset(FIXTURES / "tiny.jsonl"))
    for record in original:  # copy the images so the written file can refer to them relatively
        if record.image and not record.image.startswith("https://"):
            (tmp_path / "images").mkdir(exist_ok=True)
            (tmp_path / "images" / Path(record.image).name).write_bytes(Path(record.image).read_bytes())
    moved = [
        r.model_copy(update={"image": str(tmp_path / "images" / Path(r.image).name)})
        if r.image and not r.image.startswith("https://")
        else r
        for r in original
    ]
    assert write_jsonl(moved, tmp_path / "out.jsonl") == 4
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first == {
        "id": "red",
        "image": "images/red.png",
        "captions": ["A red square on its own.", "Crimson tile, nothing else."],
        "split": "train",
    }
    assert list(read_dataset(tmp_path / "out.jsonl")) == moved
    assert not list(tmp_path.glob("*.partial"))


def test_write_jsonl_refuses_metadata_that_would_overwrite_a_field(tmp_path):
    with pytest.raises(InputError, match="metadata key 'image'"):
        write_jsonl([ImageRecord(id="a", metadata={"image": "b"})], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


# --- Karpathy split JSON ---------------------------------------------------------------------------


def test_karpathy_flickr_ids_are_file_stems_and_images_come_from_images_dir():
    records = _by_id(read_dataset(FIXTURES / "dataset_flickr30k_tiny.json", images_dir=IMAGES))
    assert list(records) == ["red", "green", "blue"]
    assert records["red"].image == str(IMAGES / "red.png")
    assert records["red"].captions == ("A red square.", "Crimson tile.")
    assert records["red"].metadata["split"] == "train"


def test_karpathy_sentence_without_raw_falls_back_to_tokens():
    records = _by_id(read_dataset(FIXTURES / "dataset_flickr30k_tiny.json", images_dir=IMAGES))
    assert records["green"].captions == ("a green square made of tokens",)


def test_karpathy_split_filter():
    test = list(read_dataset(FIXTURES / "dataset_flickr30k_tiny.json", images_dir=IMAGES, split="test"))
    assert [r.id for r in test] == ["green"]


@pytest.mark.parametrize("images_dir", [FIXTURES, IMAGES], ids=["dataset-root", "filepath-folder-itself"])
def test_karpathy_coco_uses_cocoid_and_finds_images_with_or_without_filepath(images_dir):
    records = _by_id(read_dataset(FIXTURES / "dataset_coco_tiny.json", images_dir=images_dir))
    assert list(records) == ["391895", "522418"]
    assert records["391895"].image == str(IMAGES / "red.png")
    assert Path(records["522418"].image).is_file()


def test_karpathy_entry_without_filename_names_the_entry(tmp_path):
    bad = tmp_path / "dataset_flickr30k.json"
    bad.write_text(json.dumps({"images": [{"filename": "a.jpg", "sentences": []}, {"split": "test", "sentences": []}]}))
    with pytest.raises(InputError, match=r"dataset_flickr30k\.json images\[1\]: filename: Field required"):
        list(read_dataset(bad))


def test_karpathy_record_without_sentences_is_still_yielded(tmp_path):
    data = tmp_path / "dataset_flickr8k.json"
    data.write_text(json.dumps({"images": [{"filename": "a.jpg", "split": "test"}]}))
    (record,) = read_dataset(data)
    assert record.captions == ()
    assert record.image == str(tmp_path / "a.jpg")


# --- COCO captions -------------------------------------------------------------------------------


def test_coco_groups_captions_by_image_in_file_order():
    records = _by_id(read_dataset(FIXTURES / "captions_tiny2014.json", images_dir=IMAGES))
    assert list(records) == ["101", "102", "103"]
    assert records["101"].captions == ("A red square.", "Crimson tile.")
    assert records["102"].captions == ("A green square.", "Grass-coloured tile.")
    assert records["103"].captions == ()
    assert records["101"].image == str(IMAGES / "red.png")
    assert records["101"].metadata["coco_url"] == "http://images.cocodataset.org/val2014/red.png"


def test_coco_annotation_for_an_unknown_image_names_the_annotation(tmp_path):
    bad = tmp_path / "captions_val2014.json"
    bad.write_text(
        json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "caption": "x"}]})
    )
    with pytest.raises(InputError, match=r"annotations\[0\]: image_id 2 is not among the images"):
        list(read_dataset(bad))


def test_coco_has_no_splits(tmp_path):
    with pytest.raises(InputError, match="no record has a split field"):
        list(read_dataset(FIXTURES / "captions_tiny2014.json", split="val"))


# --- detection and file errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tiny.jsonl", "jsonl"),
        ("dataset_flickr30k_tiny.json", "karpathy"),
        ("dataset_coco_tiny.json", "karpathy"),
        ("captions_tiny2014.json", "coco"),
    ],
)
def test_format_is_detected_from_the_content(name, expected):
    assert detect_format(FIXTURES / name) == expected


def test_missing_file_is_an_input_error_before_iterating(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope.jsonl")


def test_missing_images_dir_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"image folder .* does not exist"):
        read_dataset(FIXTURES / "tiny.jsonl", images_dir=tmp_path / "nope")


def test_broken_json_names_line_and_column(tmp_path):
    bad = tmp_path / "dataset_coco.json"
    bad.write_text('{"images": [\n  {"filename": "a.jpg",}\n]}')
    with pytest.raises(InputError, match=r"dataset_coco\.json line 2 column \d+: not valid JSON"):
        read_dataset(bad)


def test_jsonl_content_in_a_json_file_gets_a_hint(tmp_path):
    bad = tmp_path / "data.json"
    bad.write_text('{"id": "a"}\n{"id": "b"}\n')
    with pytest.raises(InputError, match=r"name the file .jsonl"):
        read_dataset(bad)
    assert [r.id for r in read_dataset(bad, format="jsonl")] == ["a", "b"]


def test_unknown_json_shape_is_an_input_error(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text('{"photos": []}')
    with pytest.raises(InputError, match="unknown dataset format"):
        read_dataset(bad)
