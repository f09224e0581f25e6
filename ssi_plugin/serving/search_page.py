"""The search page ``serve`` hosts at ``/_ssi/``: a query box, the hits as pictures, and why each was found.

The page is three static files shipped in the package (``page/``: HTML, one script, one stylesheet; no framework,
nothing from another host): it sends the same ``POST /{index}/_search`` with an ``ssi`` clause that any frontend
sends, so it shows exactly what the API answers. Its ``Content-Security-Policy`` lets it reach ``serve`` only.
Routes:

- ``GET /_ssi/``: the page; ``?q=`` is the query (so a search is a link), ``?index=`` the index, by default the
  one ``serve`` was started with (or the first with a trained generator);
- ``GET /_ssi/assets/{file}``: its script, stylesheet and placeholder picture;
- ``GET /_ssi/thumb/{index}/{doc id}``: a document's image, small (``thumbnails``), read with the caller's
  credentials.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ssi_plugin.engine import caller_headers
from ssi_plugin.errors import SSIError
from ssi_plugin.serving.engine_errors import error_for
from ssi_plugin.serving.thumbnails import Thumbnails

PAGE_PATH = "/_ssi/"
ASSETS = Path(__file__).with_name("page")
"""The page's files: index.html, page.js, page.css, placeholder.svg."""
_INDEX_MARK = "__SSI_DEFAULT_INDEX__"
_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Everything the page loads or asks comes from ``serve``; a dropped image is previewed from memory (``blob:``)."""


class SearchPage:
    """The page's routes, for ``SearchProxy(..., page=...)``; ``default_index`` says which index it searches unasked."""

    def __init__(self, thumbnails: Thumbnails, *, default_index: Callable[[], str | None]) -> None:
        self._thumbnails = thumbnails
        self._default_index = default_index

    @property
    def routes(self) -> list[BaseRoute]:
        return [
            Route(PAGE_PATH, self._page, methods=["GET", "HEAD"]),
            Route(PAGE_PATH.rstrip("/"), self._to_page, methods=["GET", "HEAD"]),
            Mount(f"{PAGE_PATH}assets", StaticFiles(directory=ASSETS)),
            Route(PAGE_PATH + "thumb/{index}/{doc_id:path}", self._thumbnail, methods=["GET", "HEAD"]),
        ]

    async def _to_page(self, request: Request) -> Response:
        """``/_ssi?q=...`` is the page too: relative asset paths need the trailing slash."""
        return RedirectResponse(PAGE_PATH + (f"?{request.url.query}" if request.url.query else ""))

    async def _page(self, request: Request) -> Response:
        index = await anyio.to_thread.run_sync(self._default_index)
        text = (ASSETS / "index.html").read_text(encoding="utf-8").replace(_INDEX_MARK, html.escape(index or "", quote=True))
        return Response(text, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": _POLICY, "Cache-Control": "no-cache"})

    async def _thumbnail(self, request: Request) -> Response:
        index, doc_id = request.path_params["index"], request.path_params["doc_id"]
        try:
            picture = await anyio.to_thread.run_sync(
                self._thumbnails.thumbnail, index, doc_id, caller_headers(request.headers))
        except SSIError as exc:
            status, body = error_for(exc)
            return JSONResponse(body, status_code=status)
        if picture.placeholder is None:  # private: the caller's credentials read it
            return Response(picture.content, media_type=picture.media_type, headers={"Cache-Control": "private, max-age=60"})
        reason = " ".join(picture.placeholder.split()).encode("ascii", "replace").decode("ascii")
        return Response(picture.content, media_type=picture.media_type,
                        headers={"Cache-Control": "no-store", "X-SSI-Placeholder": reason})
