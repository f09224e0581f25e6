"""The job core: skipping what is done, the failure file's lines, bulk outcomes, the summary counts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ssi_plugin.annotation.base import Annotation, AnnotationFailure, AnnotationResult, Annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import BulkItemResult
from ssi_plugin.errors import OutputUnwritable
from ssi_plugin.identifiers import CollisionResolver, build_ssi
from ssi_plugin.jobs import Job, JobSummary, JsonLines


class Words(Annotator):
    """The caption's words are the objects; a caption ``fail`` fails."""

    name = "words"
    batch_size = 2

    @property
    def version(self) -> str:
        return "words/1"

    def annotate_batch(self, records: Sequence[ImageRecord]) -> list[AnnotationResult]:
        return [
            AnnotationFailure(id=r.id, reason="no_concept", detail="told to fail", caption=r.captions[0])
            if r.captions[0] == "fail"
            else Annotation(id=r.id, ssi=build_ssi({"objects": r.captions[0].split()}, lemmatize=False), rationale="It is.")
            for r in records
        ]


class Summary(JobSummary):
    annotated: int
    indexed: int = 0


def _images(*captions: str) -> list[ImageRecord]:
    return [ImageRecord(id=f"i{n}", captions=(caption,)) for n, caption in enumerate(captions)]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_done_and_repeated_items_are_skipped_unless_redone(tmp_path: Path) -> None:
    job = Job("test", failures=tmp_path / "f.jsonl", total=None, progress=False)
    job.done.update({"i0", "i2"})
    images = _images("a", "b", "c", "d")
    with job:
        passed = [image.id for batch in job.batches([*images, images[1]], 3, redo={"i2"}) for image in batch]
    assert passed == ["i1", "i2", "i3"]
    assert job.counts["skipped"] == 2  # i0, and i1 the second time
    assert job.done == {"i0", "i1", "i2", "i3"}


def test_annotation_failures_go_to_the_failure_file_with_stage_and_reason(tmp_path: Path) -> None:
    failures = tmp_path / "f.jsonl"
    job = Job("test", failures=failures, total=3, progress=False, counters=("annotated",))
    with job:
        identified = job.annotate(_images("dog", "fail", "cat"), Words(), CollisionResolver())
        for _ in identified:
            job.tick("annotated")
    assert [(image.id, record.ssi.id) for image, record in identified] == [("i0", "objects: dog"), ("i2", "objects: cat")]
    assert _lines(failures) == [
        {"id": "i1", "stage": "annotate", "reason": "no_concept", "detail": "told to fail", "image": None, "caption": "fail"}
    ]
    summary = job.summary(Summary)
    assert (summary.annotated, summary.failed, summary.skipped, summary.failure_reasons) == (2, 1, 0, {"no_concept": 1})
    assert summary.failures == failures


class FakeEngine:
    """Bulk answers: a document whose id starts with ``bad`` is refused with 400."""

    def bulk(self, actions: Iterable[dict[str, Any]], *, chunk_size: int) -> Iterator[BulkItemResult]:
        for action in actions:
            ok = not action["_id"].startswith("bad")
            yield BulkItemResult(ok=ok, op="index", id=action["_id"], index="x", status=201 if ok else 400,
                                 error=None if ok else {"type": "mapper_parsing_exception"})


def test_refused_documents_are_recorded_and_the_producer_is_joined(tmp_path: Path) -> None:
    failures = tmp_path / "f.jsonl"
    job = Job("test", failures=failures, total=3, progress=False, counters=("annotated", "indexed"))
    actions = ({"_id": image_id} for image_id in ("a", "bad", "c"))
    with job:
        job.index(FakeEngine(), actions, chunk_size=2, counter=lambda outcome: "indexed")  # type: ignore[arg-type]
    assert not [thread for thread in threading.enumerate() if thread.name == "ssi-prefetch"]
    assert _lines(failures) == [{"id": "bad", "stage": "index", "reason": "status 400", "detail": {"type": "mapper_parsing_exception"}}]
    assert (job.counts["indexed"], job.failures.count) == (2, 1)


def test_a_file_that_cannot_be_written_stops_the_job_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(OutputUnwritable, match=r"cannot write .*taken"), JsonLines(tmp_path / "taken" / "out.jsonl"):
        pass
