"""One progress bar for every long job (annotate, ingest, reindex, train, eval, synthetic data), on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol


class Advance(Protocol):
    """Move the bar on by ``count`` items, and show the latest value of the bar's ``fields``."""

    def __call__(self, count: int, /, **fields: float) -> None: ...


def _ignore(count: int, /, **fields: float) -> None:
    """The bar of a job run without progress display."""


@contextlib.contextmanager
def progress_bar(
    label: str,
    *,
    total: int | None,
    enabled: bool = True,
    completed: int = 0,
    transient: bool = False,
    fields: Mapping[str, str] = MappingProxyType({}),
) -> Iterator[Advance]:
    """Yield ``advance(n, **fields)``; with an unknown total the bar is a spinner with a count.

    ``completed``: items a resumed job had done before. ``transient``: the bar goes when the block ends.
    ``fields``: values the job reports as it goes, by name, each with its format, e.g. ``{"loss": "loss {:.3f}"}``
    (shown as ``nan`` until the first report).
    """
    if not enabled:
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class FieldColumn(ProgressColumn):
        def __init__(self, name: str, template: str) -> None:
            super().__init__()
            self.name, self.template = name, template

        def render(self, task: Task) -> Text:
            return Text(self.template.format(task.fields[self.name]))

    columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(),
               *(FieldColumn(name, template) for name, template in fields.items()), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=transient) as bar:
        unreported: dict[str, Any] = dict.fromkeys(fields, float("nan"))
        task = bar.add_task(label, total=total, completed=completed, **unreported)

        def advance(count: int, /, **values: Any) -> None:
            bar.update(task, advance=count, **values)

        yield advance
