"""The loop annotate, ingest and reindex share: skip what is done, annotate in batches, record failures, count.

Each job reads its checkpoint first (the annotation file, or the index it
writes) into ``Job.done``; the items it lists are skipped, so a rerun resumes
and a rerun over finished work changes nothing. The other items are annotated
a batch at a time and given collision-free identifiers in input order, so a
resumed run assigns what an uninterrupted one would. Every item that does not
make it goes to the failure file with its stage and reason, the progress bar
ticks each item off once (skipped, finished or failed), and the counts become
the job's summary.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from pydantic import BaseModel, Field

from ssi_plugin.annotation.base import Annotation, AnnotationFailure, Annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.identifiers import CollisionResolver, SSIRecord
from ssi_plugin.jobs.files import FailureLog
from ssi_plugin.jobs.prefetch import prefetched
from ssi_plugin.progress import progress_bar

if TYPE_CHECKING:
    from ssi_plugin.engine import BulkItemResult, EngineClient

T = TypeVar("T")
S = TypeVar("S", bound="JobSummary")


class JobSummary(BaseModel):
    """What every job run reports; each job adds its own counts."""

    failures: Path
    skipped: int = Field(description="Items an earlier run had finished.")
    failed: int = Field(description="Items of this run listed in the failure file.")
    failure_reasons: dict[str, int] = Field(default_factory=dict)
    seconds: float


class Job:
    """One run of a resumable job: what is done, the failure file, the progress bar and the counts.

    Used as a context manager: the failure file and the progress bar are open inside the block. ``counters``
    names the job's own counts (``skipped`` is always one); they start at zero.
    """

    def __init__(self, label: str, *, failures: Path, total: int | None, progress: bool, counters: Iterable[str] = ()) -> None:
        self.started = time.perf_counter()
        self.done: set[str] = set()
        """Ids of the items finished, by an earlier run (the job fills it from its checkpoint) or by this one."""
        self.failures = FailureLog(failures)
        self.counts = dict.fromkeys(("skipped", *counters), 0)
        self._bar = progress_bar(label, total=total, enabled=progress)
        self._advance: Callable[[int], None] = lambda count: None
        self._lock = threading.Lock()  # items are produced in one thread and indexed in another
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Self:
        with self._stack as stack:
            stack.enter_context(self.failures)
            self._advance = stack.enter_context(self._bar)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)

    def pending(self, items: Iterable[T], *, key: Callable[[T], str] = attrgetter("id"),
                redo: Container[str] = frozenset()) -> Iterator[T]:
        """The items not done yet (or named in ``redo``), each marked done as it passes; the others are skipped."""
        for item in items:
            item_id = key(item)
            if item_id in self.done and item_id not in redo:
                self.tick("skipped")
                continue
            self.done.add(item_id)
            yield item

    def batches(self, items: Iterable[T], size: int, *, key: Callable[[T], str] = attrgetter("id"),
                redo: Container[str] = frozenset()) -> Iterator[list[T]]:
        """``pending(items)`` in lists of ``size``."""
        stream = self.pending(items, key=key, redo=redo)
        while batch := list(itertools.islice(stream, size)):
            yield batch

    def annotate(self, images: Sequence[ImageRecord], annotator: Annotator,
                 resolver: CollisionResolver) -> list[tuple[ImageRecord, SSIRecord]]:
        """Annotate ``images`` as one batch: each success with its identifier, in order; each failure recorded."""
        if not images:
            return []
        identified = []
        for image, result in zip(images, annotator.annotate_batch(images), strict=True):
            if isinstance(result, AnnotationFailure):
                self.fail(image.id, "annotate", result.reason, result.detail, image=result.image, caption=result.caption)
            else:
                identified.append((image, ssi_record(result, annotator, resolver)))
        return identified

    def index(self, engine: EngineClient, actions: Iterable[dict[str, Any]], *, chunk_size: int,
              counter: Callable[[BulkItemResult], str | None] = lambda outcome: None) -> None:
        """Bulk-index ``actions``, made by a background thread meanwhile; each indexed item is ticked off under ``counter``.

        Items the engine refuses go to the failure file (stage ``index``). ``prefetched`` joins the thread when
        this returns or raises, Ctrl-C included.
        """
        with prefetched(actions, buffer=2 * chunk_size) as stream:
            for outcome in engine.bulk(stream, chunk_size=chunk_size):
                if outcome.ok:
                    self.tick(counter(outcome))
                else:
                    self.fail(outcome.id or "?", "index", f"status {outcome.status}", outcome.error)

    def fail(self, item_id: str, stage: str, reason: str, detail: Any, **context: Any) -> None:
        """Record why ``item_id`` did not make it, and tick it off."""
        self.failures.add(item_id, stage, reason, detail, **context)
        self.tick()

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self.counts[counter] += n

    def tick(self, counter: str | None = None) -> None:
        """One item is finished (and counted under ``counter``, when given)."""
        if counter is not None:
            self.count(counter)
        self._advance(1)

    def summary(self, kind: type[S], **fields: Any) -> S:
        """``kind`` with this run's counts, failures and duration, plus the job's own ``fields``."""
        return kind(failures=self.failures.path, failed=self.failures.count, failure_reasons=dict(self.failures.reasons),
                    seconds=time.perf_counter() - self.started, **self.counts, **fields)


def ssi_record(annotation: Annotation, annotator: Annotator, resolver: CollisionResolver) -> SSIRecord:
    """The line or document fields of an annotation, its identifier made unique by ``resolver``."""
    assignment = resolver.assign(annotation.id, annotation.ssi, reserve=annotation.reserve)
    return SSIRecord(
        id=annotation.id,
        ssi=assignment.ssi,
        base=assignment.base if assignment.collision else None,
        collision=assignment.collision,
        rationale=annotation.rationale,
        annotator=annotator.name,
        version=annotator.version,
        caption=annotation.caption,
    )
