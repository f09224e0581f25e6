"""The ssi searcher ``ssi-plugin serve`` runs: one ``SSISearcher`` per index, opened on its first ssi query.

Each index has its own generator, trained into ``<cache>/models/<index>`` by
``ssi-plugin train``; its trie is the index's live one (``IndexTrie``), read
with the server's own credentials and kept in step while the endpoint runs, so an
image ingested by any process is found without a restart. Loading one takes
seconds, so it happens once per index and is kept. Before that, the index is
asked of the cluster with the client's credentials, so a missing index (or one
the client may not read) gets the cluster's own answer, as a plain search would.

Whatever is asked of the cluster for a client's query (that check, the searches
of every list, the follow-ups for aggregations, post_filter and highlight)
carries the client's own credentials and none of the server's: a client without
credentials is refused as the cluster refuses it, whatever the server may read.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import EngineRequestError, InputError
from ssi_plugin.generation.spec import SPEC_FILE
from ssi_plugin.indexing.trie import POLL_SECONDS, default_model_dir
from ssi_plugin.search import SSISearcher
from ssi_plugin.search.image_query import QueryImageReader

_NO_INDEX = ("", "_all")


class IndexSearchers:
    """``ssi_search(index, body, headers)`` over the generators trained for each index.

    With ``index`` set, only that index (or alias) is served, from ``model_dir``
    when given, and a query that names no index (``/_search``) searches it.
    ``engine``'s own credentials serve the server's own work (reading each
    index's identifiers for its trie, in the background); a query's ``headers``
    are the only credentials its searches carry. ``images`` reads query images for every index (default: the
    offline annotator).
    """

    def __init__(
        self,
        engine: EngineClient,
        *,
        cache_dir: Path,
        index: str | None = None,
        model_dir: Path | None = None,
        poll: float = POLL_SECONDS,
        images: QueryImageReader | None = None,
    ) -> None:
        if model_dir is not None and index is None:
            raise InputError("a generator folder serves one index: give the index too")
        self._engine = engine
        self._poll = poll
        self._cache_dir = cache_dir
        self._index = index
        self._model_dir = model_dir
        self._images = images or QueryImageReader()
        self._open: dict[str, SSISearcher] = {}
        self._lock = threading.Lock()

    def __call__(self, index: str, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        if index not in self._open and index not in _NO_INDEX:
            self._check_searchable(index, headers)
        name = self._resolve(index)
        return self._searcher(name).search_request(name, body, headers)

    @property
    def default_index(self) -> str | None:
        """The index a client that names none searches: the served one, else the first with a trained generator."""
        if self._index is not None:
            return self._index
        models = self._cache_dir / "models"
        trained = sorted(spec.parent.name for spec in models.glob(f"*/{SPEC_FILE}")) if models.is_dir() else []
        return trained[0] if trained else None

    def health(self) -> dict[str, Any]:
        """Each open index's trie: how many identifiers, how current; and its generator's precision (``GET /_ssi/health``)."""
        with self._lock:
            searchers = dict(self._open)
        tries = {name: {**searcher.trie.health().model_dump(mode="json"), "precision": searcher.generator.precision}
                 for name, searcher in searchers.items() if searcher.trie}
        stale = [name for name, health in tries.items() if health["error"]]
        return {"status": "yellow" if stale else "green", "indices": tries}

    def close(self) -> None:
        """Stop keeping the open tries in step."""
        with self._lock:
            for searcher in self._open.values():
                searcher.close()
        self._images.close()

    def preload(self) -> None:
        """Open the served index's generator now, so the first query does not wait (and a bad folder fails early)."""
        if self._index is not None:
            self._searcher(self._index)

    def _check_searchable(self, index: str, headers: Mapping[str, str]) -> None:
        """Raise the cluster's own error (404 ``index_not_found_exception``, 403...) for a search on ``index``."""
        (answer,) = self._engine.msearch(index, [{"size": 0, "track_total_hits": False}], headers=headers)
        if "error" in answer:
            status = int(answer.get("status", 500))
            raise EngineRequestError("POST", f"/{index}/_search", status, str(answer["error"]), answer)

    def _resolve(self, index: str) -> str:
        if index in _NO_INDEX:
            if self._index is None:
                raise InputError("an ssi query names its index: send it to /{index}/_search")
            return self._index
        if "," in index or "*" in index:
            raise InputError(f"an ssi query searches one index or alias, not {index!r}")
        if self._index is not None and index != self._index:
            raise InputError(f"this endpoint answers ssi queries on {self._index!r}, not {index!r}")
        return index

    def _searcher(self, index: str) -> SSISearcher:
        with self._lock:
            searcher = self._open.get(index)
            if searcher is None:
                folder = self._model_dir or default_model_dir(self._cache_dir, index)
                if not (folder / SPEC_FILE).is_file():
                    raise InputError(
                        f"no generator for index {index!r} in {folder}: run `ssi-plugin train --index {index}` first"
                    )
                searcher = self._open[index] = SSISearcher.open(self._engine, index, model_dir=folder, cache_dir=self._cache_dir,
                                                                poll=self._poll, images=self._images)
                # The half million objects a generator brings live as long as the server: out of the collector's
                # sight (after a last collection), a full collection no longer stops every query for a third of a second.
                gc.collect()
                gc.freeze()
        return searcher
