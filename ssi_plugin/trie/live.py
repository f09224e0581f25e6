"""An index's identifiers as a trie that changes under running queries.

``apply`` takes changed images (new, re-identified, deleted) into a small
delta trie beside the base (a build of the delta alone: its cost grows with the
changes, not the index) and publishes a new ``TrieView`` in one assignment.
When the delta and the deletions outgrow ``merge_at``, a background thread
builds the next base from the view's pairs and swaps it in; changes that
arrived during the build stay in the delta. Readers never wait: they take the
current view and keep it for their query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from ssi_plugin.trie.store import IdentifierTrie
from ssi_plugin.trie.view import TrieView

Build = Callable[[Iterable[tuple[str, str]]], IdentifierTrie]
"""``(identifier, image_id)`` pairs -> a trie for the generator's tokenizer."""

MERGE_SHARE = 0.05
"""A merge starts once the delta and the deletions reach this share of the base (and at least ``MERGE_MIN``)."""
MERGE_MIN = 2000

log = logging.getLogger(__name__)


class LiveTrie:
    """The current ``TrieView`` of an index, changed by ``apply`` and merged in the background.

    ``on_swap`` is called with every new view, in order, e.g. ``Generator.use_trie``;
    ``on_merge`` with every new base and the ``mark`` of the last ``apply`` it holds (what the
    caller needs to resume from that base, e.g. how far it had read the index), e.g. to save it
    where other processes find it.
    """

    def __init__(self, base: IdentifierTrie, build: Build, *, on_swap: Callable[[TrieView], None] = lambda view: None,
                 on_merge: Callable[[IdentifierTrie, object], None] = lambda base, mark: None, mark: object = None,
                 merge_min: int = MERGE_MIN, merge_share: float = MERGE_SHARE) -> None:
        self._build = build
        self._on_swap = on_swap
        self._on_merge = on_merge
        self._merge_min = merge_min
        self._merge_share = merge_share
        self._lock = threading.Lock()
        self._delta: dict[str, str] = {}
        self._removed: set[str] = set()
        self._merging: threading.Thread | None = None
        self._mark = mark
        self.images = base.index.image_count
        """Images the view names."""
        self.merges = 0
        self.view = TrieView(base)
        on_swap(self.view)

    def apply(self, changes: Mapping[str, str | None], *, mark: object = None) -> TrieView:
        """Take in ``{image_id: identifier}`` (None: the image is gone) and publish the view that holds them."""
        with self._lock:
            self._mark = mark
            view = self.view
            touched = False
            images = self.images
            for image, identifier in changes.items():
                current = view.identifier_of(image) if image not in self._delta else self._delta[image]
                if identifier == current:
                    continue
                touched = True
                if identifier is None:
                    self._delta.pop(image, None)
                    self._removed.add(image)
                    images -= 1
                else:
                    self._delta[image] = identifier
                    images += int(current is None)
            if touched:
                self._publish(view.base)
                self.images = images  # counted once the view that names them is out
            view = self.view
        if touched:
            self._merge_if_due()
        return view

    def merge(self, *, wait: bool = True) -> None:
        """Build the next base from the current view now (in the background unless ``wait``)."""
        with self._lock:
            if self._merging is not None and self._merging.is_alive():
                thread = self._merging
            else:
                snapshot = (self.view, dict(self._delta), set(self._removed), self._mark)
                thread = self._merging = threading.Thread(target=self._merge, args=snapshot, name="trie-merge", daemon=True)
                thread.start()
        if wait:
            thread.join()

    def wait(self) -> None:
        """Return once no merge is running."""
        thread = self._merging
        if thread is not None:
            thread.join()

    @property
    def pending(self) -> int:
        """Changes held beside the base: delta images and deleted base images."""
        return len(self._delta) + len(self._removed)

    def _merge_if_due(self) -> None:
        if self.pending >= max(self._merge_min, self._merge_share * self.view.base.index.image_count):
            self.merge(wait=False)

    def _merge(self, view: TrieView, delta: dict[str, str], removed: set[str], mark: object) -> None:
        try:
            base = self._build(view.pairs())
        except Exception:  # the view stays as it was, delta and all; the next change tries again
            log.exception("merging the identifier trie failed; it keeps its delta")
            return
        with self._lock:
            self._delta = {image: identifier for image, identifier in self._delta.items() if delta.get(image) != identifier}
            self._removed -= removed
            self._publish(base)
            self.merges += 1
        self._on_merge(base, mark)

    def _publish(self, base: IdentifierTrie) -> None:
        """A new view of ``base`` with the current delta and deletions (under the lock, so views are handed on in order)."""
        delta = self._build([(identifier, image) for image, identifier in self._delta.items()]) if self._delta else None
        self.view = TrieView(base, delta, removed=frozenset(self._removed))
        self._on_swap(self.view)
