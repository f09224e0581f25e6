"""The files a job writes as it goes: its output lines and its failure file."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Self

from ssi_plugin.errors import OutputUnwritable, writing


class JsonLines:
    """A JSON-lines file, each line flushed as it is written, so an interrupted run keeps every line it wrote.

    A file that cannot be written (disk full, read-only folder) raises ``OutputUnwritable``: what cannot be
    recorded stops the job rather than being dropped. A close that fails after the job already failed does not
    hide why it failed.
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self.count = 0
        """Lines written by this run."""
        self._mode = "a" if append else "w"
        self._file: IO[str] | None = None
        self._lock = threading.Lock()  # annotation and indexing may write from different threads

    def __enter__(self) -> Self:
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open(self._mode, encoding="utf-8")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        assert self._file is not None
        try:
            with writing(self.path):
                self._file.close()
        except OutputUnwritable:
            if exc_type is None:  # otherwise the error that stopped the job is the one to report
                raise

    def write(self, line: Mapping[str, Any]) -> None:
        assert self._file is not None, f"use {type(self).__name__} as a context manager"
        text = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock, writing(self.path):
            self._file.write(text)
            self._file.flush()
            self.count += 1


class FailureLog(JsonLines):
    """A job's failure file: one line per item that did not make it, ``{"id", "stage", "reason", "detail", ...}``.

    Each run retries every item that is not done, so the file is rewritten by each run and lists what still fails.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reasons: Counter[str] = Counter()
        """Failures of this run by reason."""

    def add(self, item_id: str, stage: str, reason: str, detail: Any, **context: Any) -> None:
        """Record one failure; ``context`` (the item's image, caption, ...) helps find and fix it."""
        self.write({"id": item_id, "stage": stage, "reason": reason, "detail": detail, **context})
        with self._lock:
            self.reasons[reason] += 1
