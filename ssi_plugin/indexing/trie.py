"""Keep a generator's trie in step with the identifiers its index holds: the index is the source of truth.

``IndexTrie`` reads the index once (or resumes from the trie cache), then
polls it: documents written since the last poll (by any process: ``ingest``,
``reindex``, an application's ``_bulk``) go into the live trie's delta, and a
count check catches deletions. Every searcher does this on its own, so replicas
on other machines need nothing shipped to them, and ``ingest`` rebuilds nothing.

The trie cache (``<cache>/tries/<index>/<tokenizer>/``) keeps the last merged
base of an index with how far it had read the index, so the next searcher (a
second ``serve``, ``ssi-plugin search``) starts from it and reads only what
changed since; its marisa trie is memory-mapped, so processes on one machine
share it.

When the cluster cannot be reached, the searcher keeps answering from the trie
it has; ``health()`` says since when it is stale.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.changes import Change, IndexFeed, Layout
from ssi_plugin.errors import InvalidIdentifier, SSIError, searches_would_fail
from ssi_plugin.identifiers import parse_ssi
from ssi_plugin.trie import IdentifierTrie, TrieView
from ssi_plugin.trie.live import LiveTrie

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
"""How often a running searcher asks its index what changed: with the engine's 1 s refresh, a new image is
searchable about 2 s after it is written."""
STATE_FILE = "sync.json"


def default_model_dir(cache_dir: Path, index: str) -> Path:
    """Where ``train`` puts, and ``search``/``serve`` look for, the generator of ``index``."""
    return cache_dir / "models" / index


class SyncState(BaseModel):
    """How far a trie has read its index: what a cached trie is resumed from."""

    layout: str = Field(description="The uuids of the indices read (a reindex behind an alias changes them).")
    watermarks: dict[str, int] = Field(default_factory=dict, description="Highest _seq_no taken in, per index uuid/shard.")
    rejected: list[str] = Field(default_factory=list, description="Documents whose ssi.id does not parse: left out.")


class TrieHealth(BaseModel):
    """What a searcher's trie holds and how current it is (``serve``'s ``/_ssi/health``)."""

    index: str
    identifiers: int
    images: int
    pending: int = Field(description="Changes held in the delta beside the base.")
    merges: int
    rejected: int = Field(description="Documents left out because their ssi.id does not parse.")
    synced_at: datetime | None
    stale_seconds: float | None = Field(description="Seconds since the index was last read successfully.")
    error: str | None = Field(default=None, description="Why the last read failed; the trie still answers.")


class IndexTrie:
    """The live trie of ``index`` for one tokenizer, read from the engine and kept in step by ``sync``.

    Every read is the searcher's own work (in the background too, never on a client's behalf), so it uses
    ``engine``'s own credentials: a server's account for its tries, not any client's.

    ``build`` turns ``(identifier, image_id)`` pairs into a trie for the generator's tokenizer;
    ``on_swap`` receives every later view (``Generator.use_trie``).
    """

    def __init__(self, engine: EngineClient, index: str, *, build: Callable[[Iterable[tuple[str, str]]], IdentifierTrie],
                 tokenizer_fingerprint: str, cache_dir: Path | None) -> None:
        self.index = index
        self._feed = IndexFeed(engine, index)
        self._build = build
        self._cache = TrieCache(cache_dir / "tries" / index / tokenizer_fingerprint) if cache_dir is not None else None
        self.on_swap: Callable[[TrieView], None] = lambda view: None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._suspect = False
        self.synced_at: datetime | None = None
        self._synced_clock: float | None = None
        self.error: str | None = None
        self.unavailable: SSIError | None = None
        """Set while the last read failed as a search would fail too (``searches_would_fail``): a search can find out
        first, with one small search, instead of after its generation. It stays the first failure of a run of them
        (``failing``) until a read succeeds."""
        layout = self._feed.layout()
        cached = self._cache.load(layout) if self._cache is not None else None
        if cached is not None:
            base, self.state = cached
            self.live = self._live(base)
            self.sync()
        else:
            pairs, rejected, marks = self._read_all(layout)
            self.state = SyncState(layout=layout.key(), watermarks=marks, rejected=sorted(rejected))
            self.live = self._live(self._build([(identifier, image) for image, identifier in pairs.items()]))
            self._save(self.live.view.base, self.state)
            self._synced()

    @property
    def view(self) -> TrieView:
        return self.live.view

    def sync(self) -> None:
        """Take in what changed in the index since the last call; keep the trie as it is when the index cannot be read."""
        with self._lock:
            try:
                layout = self._feed.layout()
                if layout.key() != self.state.layout:
                    self._resync(layout)
                else:
                    changes, marks = self._feed.since(layout, self.state.watermarks)
                    self._take(changes, marks)
                    self._check_count(layout, changed=bool(changes))
            except SSIError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                if searches_would_fail(exc):
                    self.failing(exc)
                else:
                    self.unavailable = None
                log.warning("the trie of %s keeps its identifiers: reading the index failed (%s)", self.index, self.error)
                return
            self._synced()

    def start(self, interval: float = POLL_SECONDS) -> None:
        """Poll in a background thread until ``stop``."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll, args=(interval,), name=f"trie-sync-{self.index}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.live.wait()

    def health(self) -> TrieHealth:
        view = self.view
        stale = None if self._synced_clock is None else round(time.monotonic() - self._synced_clock, 3)
        return TrieHealth(index=self.index, identifiers=view.identifiers, images=self.live.images, pending=self.live.pending,
                          merges=self.live.merges, rejected=len(self.state.rejected), synced_at=self.synced_at,
                          stale_seconds=stale, error=self.error)

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sync()

    def _live(self, base: IdentifierTrie) -> LiveTrie:
        return LiveTrie(base, self._build, on_swap=lambda view: self.on_swap(view), on_merge=self._save,
                        mark=self.state.model_copy(deep=True))

    def failing(self, error: SSIError) -> None:
        """A read or a search failed as every search would: ``unavailable`` from now on, unless it already is.

        A query that began while the index was unavailable (its own search then found the engine answering) is
        abandoned when a new unavailability begins, not at each failed read of the one it began in: those go on
        every second while the trie's reads fail, and the engine may answer searches meanwhile.
        """
        if self.unavailable is None:
            self.unavailable = error

    def _synced(self) -> None:
        self.error = None
        self.unavailable = None
        self.synced_at = datetime.now(UTC)
        self._synced_clock = time.monotonic()

    def _take(self, changes: list[Change], marks: dict[str, int]) -> None:
        parsed, rejected = _parse(changes)
        known_rejected = set(self.state.rejected)
        fresh = rejected - known_rejected
        if fresh:
            log.warning("%d documents of %s have an ssi.id that does not parse; they are left out of the trie (e.g. %s)",
                        len(fresh), self.index, sorted(fresh)[0])
        self.state.rejected = sorted((known_rejected - set(parsed)) | rejected)
        self.state.watermarks = marks
        self.live.apply({**parsed, **dict.fromkeys(rejected)}, mark=self.state.model_copy(deep=True))

    def _check_count(self, layout: Layout, *, changed: bool) -> None:
        """A count that disagrees twice in a row, with nothing written between, means deletions: read everything."""
        if self._feed.count() == self.live.images + len(self.state.rejected):
            self._suspect = False
        elif self._suspect and not changed:
            self._resync(layout)
        else:
            self._suspect = True

    def _resync(self, layout: Layout) -> None:
        pairs, rejected, marks = self._read_all(layout)
        gone = {image: None for _, image in self.view.pairs() if image not in pairs}
        self.state = SyncState(layout=layout.key(), watermarks=marks, rejected=sorted(rejected))
        self.live.apply({**gone, **pairs, **dict.fromkeys(rejected)}, mark=self.state.model_copy(deep=True))
        self._suspect = False

    def _read_all(self, layout: Layout) -> tuple[dict[str, str], set[str], dict[str, int]]:
        changes, marks = self._feed.since(layout, {})
        pairs, rejected = _parse(changes)
        if rejected:
            log.warning("%d documents of %s have an ssi.id that does not parse; they are left out of the trie (e.g. %s)",
                        len(rejected), self.index, sorted(rejected)[0])
        return pairs, rejected, marks

    def _save(self, base: IdentifierTrie, mark: object) -> None:
        if self._cache is not None and isinstance(mark, SyncState):
            self._cache.save(base, mark)


def _parse(changes: list[Change]) -> tuple[dict[str, str], set[str]]:
    """``({image: canonical identifier}, {images whose identifier does not parse or was refused})``."""
    pairs: dict[str, str] = {}
    rejected: set[str] = set()
    for change in changes:
        try:
            if change.refused or not isinstance(change.identifier, str):
                raise InvalidIdentifier(change.identifier, "refused by the ingest pipeline")
            pairs[change.image_id] = parse_ssi(change.identifier).id
            rejected.discard(change.image_id)
        except InvalidIdentifier:
            rejected.add(change.image_id)
            pairs.pop(change.image_id, None)
    return pairs, rejected


class TrieCache:
    """Merged bases of one index for one tokenizer, each in a folder of its own; ``current`` names the newest.

    Writers never touch a folder another process may have mapped: a new base goes to a new folder, renamed
    into place, then ``current`` is replaced; all but the two newest folders are removed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def load(self, layout: Layout) -> tuple[IdentifierTrie, SyncState] | None:
        """The newest base read from the indices of ``layout``, memory-mapped; None when there is none (or unreadable)."""
        try:
            folder = self.root / (self.root / "current").read_text(encoding="utf-8").strip()
            state = SyncState.model_validate_json((folder / STATE_FILE).read_text(encoding="utf-8"))
            if state.layout != layout.key():
                return None
            return IdentifierTrie.load(folder, mmap=True), state
        except (OSError, ValueError, SSIError):
            return None

    def save(self, base: IdentifierTrie, state: SyncState) -> None:
        name = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:8]}"
        partial = self.root / f"{name}.partial"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            base.save(partial)
            (partial / STATE_FILE).write_text(state.model_dump_json(), encoding="utf-8")
            partial.rename(self.root / name)
            pointer = self.root / f"current.{name}"
            pointer.write_text(name, encoding="utf-8")
            pointer.replace(self.root / "current")
            for old in sorted(p for p in self.root.iterdir() if p.is_dir())[:-2]:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:  # a read-only or full cache costs the next start a full read, nothing else
            log.warning("could not save the trie of %s to %s: %s", state.layout, self.root, exc)
            shutil.rmtree(partial, ignore_errors=True)
