"""Thumbnails of indexed images, for the search page: ``GET /_ssi/thumb/{index}/{doc id}``.

Only an image that a document names can be shown: the document is read from the index with the caller's own
credentials (never the server's), so a caller sees the thumbnails of the documents it may read and nothing else,
and no request names a path. Its ``image`` field is then read as ingest stored it:

- a local path: read from disk (what ``ingest`` stores for a dataset of files);
- an http(s) or ``data:`` URL: fetched by ``ImageURLReader``, under the rules ``serve-model`` applies to chat
  images (public addresses only, 20 MiB and 10 s at most), so a document cannot make the server fetch an address
  only it can reach. The page never points at the remote host itself: every request it makes goes to ``serve``.

A document whose image cannot be shown (no ``image`` field, a file gone, a failed download, not an image) gets a
placeholder picture, marked by the ``X-SSI-Placeholder`` header with the reason, so its hit still shows. Resized
thumbnails are kept in memory (least recently used first out, within ``cache_bytes``), keyed by the image and, for
a file, its size and modification time: a changed or deleted file is read again.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ssi_plugin.annotation.image_urls import ImageURLReader
from ssi_plugin.annotation.images import open_image
from ssi_plugin.datasets._paths import is_url
from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import AnnotationError, EngineRequestError, InputError
from ssi_plugin.serving.engine_errors import SearchRequestError

IMAGE_FIELD = "image"
"""The document field that names its image (what ``ingest`` writes)."""
THUMBNAIL_SIDE = 256
CACHE_BYTES = 64 * 2**20
PLACEHOLDER = Path(__file__).with_name("page") / "placeholder.svg"


class Thumbnail(NamedTuple):
    """A picture to answer with; ``placeholder`` says why the document's own image is not shown (None: it is)."""

    content: bytes
    media_type: str
    placeholder: str | None = None


class Thumbnails:
    """Resized images of the documents of an index, read for a caller; ``index`` set: that index (or alias) only."""

    def __init__(self, engine: EngineClient, *, index: str | None = None, side: int = THUMBNAIL_SIDE,
                 cache_bytes: int = CACHE_BYTES, urls: ImageURLReader | None = None) -> None:
        self._engine = engine
        self._index = index
        self._side = side
        self._cache_bytes = cache_bytes
        self._urls = urls or ImageURLReader(local_hint=None)
        self._cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def thumbnail(self, index: str, doc_id: str, headers: Mapping[str, str]) -> Thumbnail:
        """The thumbnail of document ``doc_id`` of ``index``, read with the caller's ``headers``.

        Raises ``SearchRequestError`` (400 for an index this endpoint does not serve, 404 for a missing document)
        or ``EngineRequestError`` (the cluster's refusal: a missing index, no permission).
        """
        if "," in index or "*" in index or index.startswith("_"):
            raise SearchRequestError(f"thumbnails come from one index, not [{index}]", error_type="illegal_argument_exception")
        if self._index is not None and index != self._index:
            raise SearchRequestError(f"this endpoint shows the images of [{self._index}], not [{index}]",
                                     error_type="illegal_argument_exception")
        ref = self._image_ref(index, doc_id, headers)
        if not isinstance(ref, str) or not ref:
            return _placeholder(f"document [{doc_id}] names no image")
        try:
            key = self._key(ref)
        except OSError as exc:
            return _placeholder(f"the image file of [{doc_id}] cannot be read: {exc.strerror or exc}")
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return Thumbnail(cached, "image/jpeg")
        try:
            content = self._resized(ref)
        except AnnotationError as exc:  # unreadable: missing, corrupt, not an image
            return _placeholder(f"the image of [{doc_id}] cannot be shown: {exc.detail}")
        except InputError as exc:  # refused: a non-public address, too large, a scheme that is not read
            return _placeholder(f"the image of [{doc_id}] cannot be shown: {exc}")
        self._keep(key, content)
        return Thumbnail(content, "image/jpeg")

    def _image_ref(self, index: str, doc_id: str, headers: Mapping[str, str]) -> object:
        """The document's ``image`` field, read as the caller (an ``ids`` search: the same on both engines)."""
        body = {"size": 1, "track_total_hits": False, "_source": [IMAGE_FIELD], "query": {"ids": {"values": [doc_id]}}}
        (answer,) = self._engine.msearch(index, [body], headers=headers)
        if "error" in answer:
            status = int(answer.get("status", 500))
            raise EngineRequestError("GET", f"/_ssi/thumb/{index}/{doc_id}", status, str(answer["error"]), answer)
        hits = answer["hits"]["hits"]
        if not hits:
            raise SearchRequestError(f"document [{doc_id}] not found in [{index}]", status=404,
                                     error_type="resource_not_found_exception")
        return hits[0].get("_source", {}).get(IMAGE_FIELD)

    def _key(self, ref: str) -> tuple[Any, ...]:
        """What identifies a thumbnail: a URL itself, a file with its size and modification time (``OSError``: gone)."""
        if is_url(ref):
            return (ref, self._side)
        stat = Path(ref).stat()
        return (ref, stat.st_size, stat.st_mtime_ns, self._side)

    def _resized(self, ref: str) -> bytes:
        from PIL import Image

        if ref.startswith(("http://", "https://", "data:")):
            image = self._urls.read(ref)
        elif is_url(ref):
            raise InputError(f"{ref.partition(':')[0]} URLs are not read: only local files and http(s) or data: URLs")
        else:
            image = open_image(ref, draft_size=self._side * 2)
        image.thumbnail((self._side, self._side), Image.Resampling.LANCZOS)
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=82)
        return encoded.getvalue()

    def _keep(self, key: tuple[Any, ...], content: bytes) -> None:
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = content
            self._cached_bytes += len(content)
            while self._cached_bytes > self._cache_bytes and self._cache:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)


def _placeholder(reason: str) -> Thumbnail:
    return Thumbnail(PLACEHOLDER.read_bytes(), "image/svg+xml", reason)
