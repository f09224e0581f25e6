"""The Python API: one index on one cluster in a few calls, and the ASGI app of ``serve``.

    from ssi_plugin import SSIIndex

    with SSIIndex.connect("http://localhost:9200", "photos") as photos:   # no URL: the embedded local node
        photos.setup()                                  # templates and ingest pipeline (idempotent)
        photos.ingest("photos/dataset.jsonl")           # annotate and index (resumable)
        photos.train()                                  # the generator of the index
        for hit in photos.search("a dog catching a frisbee").hits:
            print(hit.id, hit.score, hit.identifier)

``create_app`` builds the app ``ssi-plugin serve`` runs. The command line is a thin layer over these calls: what
they decide (settings from arguments and the environment, counting a dataset, where an index's generator lives,
what the server's own credentials are used for) is decided here. Importing this module loads no torch and no
engine client; each call loads what it needs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ssi_plugin.config import EngineKind, generator_precision, resolve_settings
from ssi_plugin.errors import ConfigError, InputError, describe_validation_error

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ssi_plugin.annotation.factory import AnnotatorOptions
    from ssi_plugin.engine import EngineClient
    from ssi_plugin.engine.layout import SetupAction
    from ssi_plugin.generation.training import TrainingConfig, TrainingReport
    from ssi_plugin.indexing import IngestSummary
    from ssi_plugin.search import SearchResult, SSISearcher
    from ssi_plugin.search.image_query import QueryImageReader
    from ssi_plugin.search.options import Fusion

DEFAULT_INDEX = "ssi-images"
"""The index of ``SSIIndex.connect()`` when none is named (the index template's ``ssi-*`` pattern covers it)."""

Log = Callable[[str], None]
"""Receives progress lines (starting the local node, what a job is about to do): ``print``, a logger's method..."""


def _quiet(line: str) -> None:
    """The default ``log``: a library says nothing unless asked."""


class Connection(TypedDict, total=False):
    """How to reach and trust the cluster, named as in ``EngineSettings``.

    What is not given comes from the environment (``SSI_API_KEY``, ``SSI_USERNAME``, ``SSI_PASSWORD``,
    ``SSI_CA_CERTS``, ``SSI_VERIFY_CERTS``, ``SSI_ENGINE``, ``SSI_CACHE_DIR``), then the defaults: the client
    detected from the cluster, TLS verification on, the user's cache folder (local node, generators, tries).
    """

    engine: EngineKind
    api_key: str
    username: str
    password: str
    ca_certs: str | os.PathLike[str]
    verify_certs: bool
    cache_dir: str | os.PathLike[str]


class SSIIndex:
    """One index (or alias) on one cluster, and the generator trained for it: set up, ingest, train, search.

    Build it with ``connect``; ``close`` (or ``with``) releases the client and the searcher. The searcher opens on
    the first ``search`` and keeps its trie in step with the index in the background, as ``serve`` does, so images
    that any process ingests are found without retraining; ``ingest`` and ``train`` bring it up to date at once.
    """

    def __init__(self, engine: EngineClient, index: str, *, cache_dir: Path, generator_dir: str | os.PathLike[str] | None = None,
                 images: QueryImageReader | None = None, log: Log = _quiet) -> None:
        from ssi_plugin.indexing.trie import default_model_dir

        self.engine = engine
        self.index = _index_name(index)
        self.cache_dir = cache_dir
        self.generator_dir = Path(generator_dir) if generator_dir is not None else default_model_dir(cache_dir, index)
        """Where ``train`` writes the generator and ``search`` reads it (default: the index's, as the commands use)."""
        self._images = images
        self._log = log
        self._searcher: SSISearcher | None = None

    @classmethod
    def connect(cls, url: str | None = None, index: str = DEFAULT_INDEX, *, generator_dir: str | os.PathLike[str] | None = None,
                images: QueryImageReader | None = None, log: Log = _quiet, **connection: Unpack[Connection]) -> SSIIndex:
        """Connect to the cluster at ``url`` (None: ``SSI_ENGINE_URL``, ``ELASTICSEARCH_URL`` or ``OPENSEARCH_URL``,
        else the embedded local node, started when needed) for ``index``.

        ``images`` reads query images (default: the offline annotator with the image classifier); ``connection``
        holds credentials and TLS settings (``Connection``).
        """
        from ssi_plugin.engine import connect

        settings = resolve_settings(url=url, **connection)
        _index_name(index)  # before a local node is started for nothing
        engine = connect(settings, progress=log)
        try:
            return cls(engine, index, cache_dir=settings.cache_dir, generator_dir=generator_dir, images=images, log=log)
        except BaseException:
            engine.close()
            raise

    def setup(self, *, index_patterns: Iterable[str] | None = None, dry_run: bool = False) -> list[SetupAction]:
        """Install or update the index templates and the ingest pipeline (for the whole cluster; idempotent, versioned).

        ``index_patterns`` replaces the template's ``ssi-*``; ``dry_run`` changes nothing, and each action holds the
        request it would send. ``ingest`` installs them too: calling this first only makes the step explicit.
        """
        from ssi_plugin.engine.layout import install_layout, load_layout

        patterns = list(index_patterns or ())
        return install_layout(self.engine, load_layout(index_patterns=patterns or None), dry_run=dry_run)

    def ingest(self, dataset: str | os.PathLike[str], *, images_dir: str | os.PathLike[str] | None = None,
               split: str | None = None, limit: int | None = None, annotator: str = "caption",
               annotator_options: AnnotatorOptions | None = None, failures: str | os.PathLike[str] | None = None,
               chunk_size: int = 500, vectors: bool = False, progress: bool = True) -> IngestSummary:
        """Annotate ``dataset`` (JSONL, Karpathy or COCO JSON) and index it, creating the index when missing.

        Resumable: images the index holds from this annotator version are skipped. Images that fail are listed in
        ``failures`` (default: ``INDEX.failures.jsonl``) and counted in the summary, not raised. ``annotator`` is
        ``caption`` (offline), ``mllm`` or ``http``, configured by ``annotator_options``; ``vectors`` also writes
        each caption's embedding for hybrid search.
        """
        from ssi_plugin.annotation.factory import create_annotator
        from ssi_plugin.datasets import counted_dataset
        from ssi_plugin.indexing import ingest

        records, total = counted_dataset(dataset, images_dir=images_dir, split=split, limit=limit)
        with create_annotator(annotator, annotator_options) as reader:
            self._log(f"Ingesting {total} images of {dataset} into {self.engine.kind} {self.engine.url}/{self.index} "
                      f"with {reader.version} ...")
            summary = ingest(self.engine, records, reader, index=self.index, total=total, chunk_size=chunk_size,
                             failures=Path(failures or f"{self.index}.failures.jsonl"), vectors=vectors, progress=progress)
        if self._searcher is not None and self._searcher.trie is not None:
            self._searcher.trie.sync()  # this object's own searches see the new images now, not at the next poll
        return summary

    def train(self, *, epochs: int | None = None, config: TrainingConfig | None = None,
              data: Iterable[str | os.PathLike[str]] = (), resume: bool = True, overwrite: bool = False,
              progress: bool = True) -> TrainingReport:
        """Fine-tune the generator on the captions and identifiers the index holds, into ``generator_dir``.

        ``data``: JSONL files of further examples (text -> identifier, + rationale), e.g. an annotation file or
        extra queries. ``epochs`` replaces ``config``'s (default: from the corpus size). An interrupted run resumes;
        a folder from another configuration is refused unless ``overwrite``. The next search uses the new generator.
        """
        from pydantic import ValidationError

        from ssi_plugin.generation.examples import read_examples
        from ssi_plugin.generation.training import TrainingConfig, train
        from ssi_plugin.indexing.documents import training_examples

        try:
            config = TrainingConfig.model_validate({**(config or TrainingConfig()).model_dump(),
                                                    **({"epochs": epochs} if epochs is not None else {})})
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None
        if not self.engine.exists(f"/{self.index}"):
            raise InputError(f"index {self.index!r} does not exist on {self.engine.url}: ingest a dataset first")
        examples = [*read_examples(*data), *training_examples(self.engine, self.index)]
        self._log(f"Training {config.base} on {len(examples)} examples -> {self.generator_dir}")
        report = train(examples, self.generator_dir, config, resume=resume, overwrite=overwrite, progress=progress)
        assert report is not None  # None only when told to stop early (stop_after)
        self._close_searcher()
        return report

    def search(self, text: str | None = None, *, image: str | os.PathLike[str] | None = None, size: int = 10, k: int = 10,
               fusion: Fusion | None = None, bm25_field: str | None = None, bm25: bool = True, hybrid: bool = False,
               vector_field: str | None = None, explain: bool = False) -> SearchResult:
        """The images of the index that best match ``text``, or ``image`` (with ``text`` as its caption, if given).

        ``image``: a local file, a ``data:`` URL or an http(s) URL of a public address. ``k`` identifiers are
        generated; ``fusion`` (``linear`` or ``rrf``), ``bm25_field`` (None: the clause's default, the caption;
        ``bm25=False``: no BM25 list) and ``hybrid``/``vector_field`` (the engine's kNN search) shape the lists fused,
        as in an ``ssi`` clause. ``explain`` fills each hit's matched concepts and
        list ranks. ``result.hits`` are typed: id, score, identifier, source...
        """
        from pydantic import ValidationError

        from ssi_plugin.search import SSIQuery

        if bm25_field is not None and not bm25:
            raise InputError(f"bm25_field={bm25_field!r} names the BM25 list's field and bm25=False asks for none: "
                             "give one of them")
        chosen: dict[str, Any] = {"fusion": fusion} if fusion is not None else {}  # unset: the clause's default
        if bm25_field is not None or not bm25:
            chosen["bm25_field"] = bm25_field
        image_url = _image_url(image) if image is not None else None
        try:
            query = SSIQuery(query=text, image=image_url, k=k, hybrid=hybrid,
                             vector_field=vector_field, explain=explain, **chosen)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc)) from None
        return self._open_searcher().search(query, size=size)

    def close(self) -> None:
        """Stop the searcher's background reads, release the query-image annotator, close the client."""
        self._close_searcher()
        if self._images is not None:
            self._images.close()
        self.engine.close()

    def __enter__(self) -> SSIIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_searcher(self) -> SSISearcher:
        if self._searcher is None:
            from ssi_plugin.indexing.trie import POLL_SECONDS
            from ssi_plugin.search import SSISearcher
            from ssi_plugin.search.image_query import QueryImageReader

            self._images = self._images or QueryImageReader()
            self._searcher = SSISearcher.open(self.engine, self.index, model_dir=self.generator_dir, cache_dir=self.cache_dir,
                                              poll=POLL_SECONDS, images=self._images)
        return self._searcher

    def _close_searcher(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None


def create_app(url: str | None = None, *, index: str | None = None, generator_dir: str | os.PathLike[str] | None = None,
               max_body_size: int | str = "10MiB", request_timeout: float = 60.0, ssi_concurrency: int | None = None,
               images: QueryImageReader | None = None, log: Log = _quiet, **connection: Unpack[Connection]) -> Starlette:
    """The ASGI app of ``ssi-plugin serve``: the cluster's search API, with ``ssi`` queries answered here.

    Every request reaches the cluster at ``url`` (None: as ``SSIIndex.connect``) with its client's own credentials;
    the server's (``api_key``, ``username``/``password`` in ``connection``) only read each index's identifiers
    for its trie. With ``index`` only that index is served, its generator (``generator_dir``, default: the one
    trained for it) loaded now; else any index with a trained generator, each loaded on its first query.
    ``max_body_size`` (bytes, or e.g. ``"512KiB"``) caps the search bodies read here; ``request_timeout`` is the
    seconds to wait for the cluster; ``ssi_concurrency`` the ssi queries answered at once (default:
    ``ProxySettings``'s), whose generation is batched. The process then computes with one torch and one BLAS thread
    (``threads.one_thread_per_query``): its parallelism is the queries'; its C allocator keeps few heap arenas for
    its many threads (``threads.few_allocator_arenas``). The client and the tries' background reads
    are released when the server stops the app. ``uvicorn --factory ssi_plugin:create_app`` serves it with the
    settings of the environment.
    """
    from pydantic import ValidationError

    from ssi_plugin.engine import connect
    from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
    from ssi_plugin.serving.search_page import SearchPage
    from ssi_plugin.serving.searchers import IndexSearchers
    from ssi_plugin.serving.thumbnails import Thumbnails
    from ssi_plugin.threads import few_allocator_arenas, one_thread_per_query

    settings = resolve_settings(url=url, **connection)
    with contextlib.ExitStack() as held:
        engine = connect(settings, progress=log)
        held.callback(engine.close)
        try:
            proxy_settings = ProxySettings(
                upstream=engine.url, max_body_size=max_body_size,  # type: ignore[arg-type]  # ByteSize parses "10MiB"
                connect_timeout=settings.connect_timeout, request_timeout=request_timeout, verify_certs=settings.verify_certs,
                ca_certs=settings.ca_certs, engine=engine.info.kind,
                **({} if ssi_concurrency is None else {"ssi_concurrency": ssi_concurrency}),
            )
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None
        one_thread_per_query()  # this process answers queries concurrently: parallelism comes from them
        few_allocator_arenas()
        searchers = IndexSearchers(engine, cache_dir=settings.cache_dir, index=index, images=images,
                                   model_dir=Path(generator_dir) if generator_dir is not None else None)
        held.callback(searchers.close)
        if index is not None:
            log(f"Loading the generator of {index} ({generator_precision()}) ...")
            searchers.preload()
        page = SearchPage(Thumbnails(engine, index=index), default_index=lambda: searchers.default_index)
        proxy = SearchProxy(proxy_settings, searchers, health=searchers.health, page=page, on_shutdown=held.pop_all().close)
    served = f"ssi queries on {index}" if index else "ssi queries on any index with a trained generator"
    log(f"Serving the search API of {engine.kind} {engine.info.version} at {engine.url} ({served})")
    return proxy.app


def _index_name(index: str) -> str:
    """``index``, refused when empty (the engines' own rules judge the rest, naming it)."""
    if not isinstance(index, str) or not index.strip():
        raise ConfigError(f"index: expected an index name, got {index!r}")
    return index


def _image_url(image: str | os.PathLike[str]) -> str:
    """A ``data:`` or http(s) URL as it is (the searcher checks it); a file as a ``data:`` URL, checked to decode."""
    from ssi_plugin.annotation.images import image_data_url
    from ssi_plugin.errors import AnnotationError

    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    try:
        return image_data_url(os.fspath(image))
    except AnnotationError as exc:
        raise InputError(exc.detail) from None
