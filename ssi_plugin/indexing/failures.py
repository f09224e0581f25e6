"""The failure file of ingest and reindex: one JSON line per item that did not make it, with stage and reason."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from ssi_plugin.errors import OutputUnwritable, writing


class FailureLog:
    """Written as failures happen (flushed), so an interrupted run still leaves its record.

    A file that cannot be written (disk full, read-only folder) raises ``OutputUnwritable``: a failure that
    cannot be recorded stops the job rather than being dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[str] | None = None
        self._lock = threading.Lock()  # annotation and indexing may record from different threads

    def __enter__(self) -> FailureLog:
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        assert self._file is not None
        try:
            with writing(self.path):
                self._file.close()
        except OutputUnwritable:
            if exc_type is None:  # otherwise the error that stopped the job is the one to report
                raise

    def add(self, item_id: str, stage: str, reason: str, detail: Any) -> None:
        assert self._file is not None, "use FailureLog as a context manager"
        line = json.dumps({"id": item_id, "stage": stage, "reason": reason, "detail": detail}, default=str) + "\n"
        with self._lock, writing(self.path):
            self._file.write(line)
            self._file.flush()
            self.count += 1
