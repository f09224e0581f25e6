"""Annotate a dataset to a JSONL file: resumable, idempotent, failures recorded, progress shown.

- The output holds one ``SSIRecord`` line per annotated image (layout in
  ``ssi_plugin.identifiers.record``), appended batch by batch and flushed.
- Resume: images already in the output are skipped; their identifiers seed the
  collision resolver, so new images never take an identifier already given,
  and a rerun over a finished output changes nothing. A last line cut short
  by an interruption is dropped and redone. An output written by another
  annotator or version is refused, so a file never mixes provenance by
  accident.
- Failures go to ``<out>.failures.jsonl`` (``ssi_plugin.jobs.FailureLog``: id,
  stage, reason name, detail, image, caption). Every run retries the images
  that are not in the output, so that file is rewritten by each run and lists
  what still fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from ssi_plugin.annotation.base import Annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import ConfigError, InputError, writing
from ssi_plugin.identifiers import CollisionReport, CollisionResolver, SSIRecord
from ssi_plugin.jobs import Job, JobSummary, JsonLines


class AnnotateSummary(JobSummary):
    """What a run did. ``annotated``/``failed`` count this run; ``collisions`` covers the whole output."""

    out: Path
    annotated: int
    collisions: CollisionReport

    @property
    def images_per_second(self) -> float:
        done = self.annotated + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0


def failures_path(out: Path) -> Path:
    return out.with_name(out.name + ".failures.jsonl")


def read_annotations(out: Path) -> list[SSIRecord]:
    """The complete lines of an annotation file; a cut-short last line is removed from the file."""
    if not out.exists():
        return []
    records = []
    with out.open("r+b") as handle:
        good_end = 0
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):  # interrupted while writing: redo that image
                break
            try:
                records.append(SSIRecord.from_line(json.loads(raw)))
            except (ValueError, KeyError, TypeError, ValidationError, InputError) as exc:
                raise InputError(f"{out} line {number} is not an annotation line: {exc}") from None
            good_end += len(raw)
        handle.truncate(good_end)
    return records


def annotate_dataset(
    records: Iterable[ImageRecord],
    annotator: Annotator,
    out: str | os.PathLike[str],
    *,
    total: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> AnnotateSummary:
    """Annotate ``records`` into ``out`` (JSONL), resuming from what ``out`` already holds.

    Args:
        records: the dataset (e.g. ``read_dataset(path)``).
        annotator: any ``Annotator``; its ``name`` and ``version`` are stamped on each line.
        out: the output file; its failure file is ``<out>.failures.jsonl``.
        total: number of records, for the progress bar (unknown: a spinner).
        overwrite: start from an empty output instead of resuming.
        progress: show a rich progress bar on stderr.

    Raises:
        ConfigError: ``out`` was written by another annotator or version.
        OutputUnwritable: ``out`` or its failure file cannot be written (disk full, read-only); what was
            written before stays, and a rerun resumes from it.
        InputError: ``out`` holds a line that is not an annotation.
    """
    out = Path(out)
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            out.unlink(missing_ok=True)
    existing = read_annotations(out)
    _check_provenance(existing, annotator, out)
    resolver = CollisionResolver()
    resolver.register_all((record.id, record.assignment) for record in existing)
    job = Job("annotating", failures=failures_path(out), total=total, progress=progress, counters=("annotated",))
    job.done.update(record.id for record in existing)
    with JsonLines(out, append=True) as sink, job:
        for batch in job.batches(records, annotator.batch_size):
            for _, record in job.annotate(batch, annotator, resolver):
                sink.write(record.to_line())
                job.tick("annotated")
    return job.summary(AnnotateSummary, out=out, collisions=resolver.report())


def _check_provenance(existing: list[SSIRecord], annotator: Annotator, out: Path) -> None:
    if not existing:
        return
    written = {(record.annotator, record.version) for record in existing}
    current = (annotator.name, annotator.version)
    if written != {current}:
        found = ", ".join(f"{name} {version!r}" for name, version in sorted(written))
        raise ConfigError(
            f"{out} was written by {found}, not {current[0]} {current[1]!r}: "
            "choose another --out, or --overwrite to start again"
        )
