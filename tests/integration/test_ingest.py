"""`ingest` annotates a dataset into an index: resumable, idempotent, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.datasets import ImageRecord, read_dataset
from ssi_plugin.engine import EngineClient
from ssi_plugin.indexing import ingest
from ssi_plugin.indexing.documents import identifier_pairs

pytestmark = pytest.mark.engine

RECORDS = [
    ImageRecord(id="dog", captions=("A brown dog catches a red frisbee in the park.",)),
    ImageRecord(id="cat", captions=("A black cat sleeps on a sofa in the living room.",)),
    ImageRecord(id="dog-again", captions=("A brown dog catches a red frisbee in the park.",)),
    ImageRecord(id="empty", captions=("   ",)),
    ImageRecord(id="boat", captions=("Two white boats float on a calm lake.",)),
]


@pytest.fixture(scope="module")
def annotator():
    with create_annotator("caption") as caption_annotator:
        yield caption_annotator


def _snapshot(engine: EngineClient, index: str) -> dict[str, dict]:
    hits = engine.search(index, {"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_ingest_indexes_identified_images_and_records_failures(engine: EngineClient, annotator, index_name: str, tmp_path: Path) -> None:
    failures = tmp_path / "failures.jsonl"
    summary = ingest(engine, RECORDS, annotator, index=index_name, failures=failures, progress=False)

    assert (summary.indexed, summary.failed, summary.skipped) == (4, 1, 0)
    failed = [json.loads(line) for line in failures.read_text().splitlines()]
    assert [(f["id"], f["stage"], f["reason"]) for f in failed] == [("empty", "annotate", "caption_missing")]

    docs = _snapshot(engine, index_name)
    assert set(docs) == {"dog", "cat", "dog-again", "boat"}
    assert "dog" in docs["dog"]["ssi"]["objects"]
    assert "objects:dog" in docs["dog"]["ssi"]["concepts"]
    assert docs["cat"]["caption"] == RECORDS[1].captions[0]
    identifiers = {image: identifier for identifier, image in identifier_pairs(engine, index_name)}
    assert len(set(identifiers.values())) == 4, "identical captions still get distinct identifiers"
    assert identifiers["dog-again"].startswith(identifiers["dog"].split(" | #")[0])


def test_rerun_is_idempotent_and_resumes(engine: EngineClient, annotator, index_name: str, tmp_path: Path) -> None:
    first = ingest(engine, RECORDS[:2], annotator, index=index_name, failures=tmp_path / "f1.jsonl", progress=False)
    assert first.indexed == 2
    resumed = ingest(engine, RECORDS, annotator, index=index_name, failures=tmp_path / "f2.jsonl", progress=False)
    assert (resumed.skipped, resumed.indexed) == (2, 2)
    after_resume = _snapshot(engine, index_name)

    again = ingest(engine, RECORDS, annotator, index=index_name, failures=tmp_path / "f3.jsonl", progress=False)
    assert (again.indexed, again.skipped) == (0, 4)
    assert _snapshot(engine, index_name) == after_resume


def test_documents_the_engine_rejects_are_recorded(engine: EngineClient, annotator, index_name: str, tmp_path: Path) -> None:
    engine.request("PUT", f"/{index_name}", body={"mappings": {"properties": {"image": {"type": "integer"}}}})
    failures = tmp_path / "failures.jsonl"
    photo = tmp_path / "not-a-number.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    records = [ImageRecord(id="bad-image-field", image=str(photo), captions=("A dog runs on the beach.",))]
    summary = ingest(engine, records, annotator, index=index_name, failures=failures, progress=False)
    assert (summary.indexed, summary.failed) == (0, 1)
    failure = json.loads(failures.read_text())
    assert (failure["id"], failure["stage"]) == ("bad-image-field", "index")
    assert "image" in json.dumps(failure["detail"])


def test_unreadable_images_are_recorded_not_indexed_and_a_rerun_changes_nothing(
    engine: EngineClient, annotator, index_name: str, tmp_path: Path
) -> None:
    Image.new("RGB", (32, 24), (200, 40, 40)).save(tmp_path / "dog.jpg")
    Image.new("RGB", (32, 24), (40, 40, 200)).save(tmp_path / "boat.png")
    (tmp_path / "cat.jpg").write_text("a text file that claims to be a JPEG")
    rows = [
        {"id": "dog", "image": "dog.jpg", "captions": [RECORDS[0].captions[0]]},
        {"id": "cat", "image": "cat.jpg", "captions": [RECORDS[1].captions[0]]},
        {"id": "gone", "image": "gone.jpg", "captions": ["A red bus waits at a stop."]},
        {"id": "boat", "image": "boat.png", "captions": [RECORDS[4].captions[0]]},
    ]
    dataset = tmp_path / "dataset.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def run(failures: Path) -> tuple[object, list[tuple[str, str, str]]]:
        summary = ingest(engine, read_dataset(dataset), annotator, index=index_name, failures=failures, progress=False)
        failed = [json.loads(line) for line in failures.read_text().splitlines()]
        return summary, [(f["id"], f["stage"], f["reason"]) for f in failed]

    first, failed = run(tmp_path / "f1.jsonl")
    assert (first.indexed, first.failed) == (2, 2)
    assert failed == [("cat", "annotate", "image_unreadable"), ("gone", "annotate", "image_unreadable")]
    docs = _snapshot(engine, index_name)
    assert set(docs) == {"dog", "boat"}
    assert docs["dog"]["image"] == str(tmp_path / "dog.jpg")

    again, failed_again = run(tmp_path / "f2.jsonl")
    assert (again.indexed, again.skipped, again.failed) == (0, 2, 2)
    assert failed_again == failed
    assert _snapshot(engine, index_name) == docs
