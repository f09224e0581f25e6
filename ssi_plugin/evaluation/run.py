"""The ``ssi-plugin eval`` job: ingest the first captions, train, query with the others, measure every retriever.

Steps, each reusing what an earlier run left when its inputs are unchanged:

1. split: first caption -> metadata, further captions -> queries; with
   ``unseen`` a seeded share of the images is held back from training;
2. ingest into an index named after the ingested content (``ssi-eval-<hash>``):
   the ingest job skips images the index already holds;
3. train each generator variant on (first caption -> identifier + rationale)
   of the seen images, cached by a hash of configuration and examples;
4. ingest the held-back images (the generators are not retrained: their tries
   are rebuilt from the index, as after any ingest);
5. ask every query of every retriever (one warm-up query first, not timed),
   one retriever loaded at a time;
6. summarize into an ``EvalReport``, for seen and unseen images apart, with paired
   significance tests between the retrievers that the project's claims compare.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.config import generator_precision
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine.capabilities import capabilities
from ssi_plugin.engine.vectors import ensure_vector_field
from ssi_plugin.errors import InputError, PartialFailure
from ssi_plugin.evaluation.metrics import RECALL_CUTOFFS, QueryOutcome, RetrievalMetrics, summarize
from ssi_plugin.evaluation.models import HYBRID_FAMILY, ModelVariant, ensure_trained
from ssi_plugin.evaluation.protocol import EvalQuery, split_for_evaluation
from ssi_plugin.evaluation.report import EvalReport, RetrieverResult, compare_retrievers
from ssi_plugin.evaluation.retrievers import Retriever
from ssi_plugin.generation.examples import TrainingExample
from ssi_plugin.identifiers import SSIRecord
from ssi_plugin.progress import progress_bar

if TYPE_CHECKING:
    from ssi_plugin.annotation.base import Annotator
    from ssi_plugin.engine import EngineClient

BASELINES = ("bm25", "dense-minilm", "dense-engine")
"""Retrievers that need no trained model."""

Log = Callable[[str], None]


class EvalOptions(BaseModel):
    """What one evaluation run compares, and where it keeps what it can reuse."""

    model_config = ConfigDict(frozen=True)

    work_dir: Path = Field(description="Models and failure files; reused across runs.")
    index: str | None = Field(default=None, description="Index to ingest into; default ssi-eval-<content hash>.")
    variants: tuple[ModelVariant, ...] = ()
    baselines: tuple[str, ...] = BASELINES
    k: int = Field(default=max(RECALL_CUTOFFS), ge=1)
    max_queries: int | None = Field(default=None, ge=1)
    unseen: float = Field(default=0.0, ge=0, lt=1, description="Share of the images held back from training and "
                          "ingested after it; 0: every image is trained on.")
    split_seed: int = Field(default=0, description="Seed of the draw of unseen images.")
    progress: bool = True


def evaluate(
    engine: EngineClient,
    records: Iterable[ImageRecord],
    annotator: Annotator,
    options: EvalOptions,
    *,
    dataset: str,
    log: Log = lambda line: None,
) -> EvalReport:
    """Run the protocol on ``records`` against ``engine`` and return the figures of every retriever."""
    unknown = sorted(set(options.baselines) - set(BASELINES))
    if unknown:
        raise InputError(f"unknown baseline {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    names = [*options.baselines, *(variant.name for variant in options.variants)]
    if len(set(names)) != len(names):
        raise InputError(f"retriever names must be distinct, got {', '.join(names)}")
    vectors = "dense-engine" in names or any(variant.search for variant in options.variants)
    if vectors and capabilities(engine).vectors is None:
        log(f"{engine.kind} at {engine.url} has no vector search (OpenSearch needs its k-NN plugin): "
            f"leaving out dense-engine and {HYBRID_FAMILY}")
        options = options.model_copy(update={
            "baselines": tuple(name for name in options.baselines if name != "dense-engine"),
            "variants": tuple(variant for variant in options.variants if not variant.search)})
        names = [*options.baselines, *(variant.name for variant in options.variants)]
        vectors = False
    split = split_for_evaluation(records, max_queries=options.max_queries, unseen=options.unseen, seed=options.split_seed)
    index = options.index or f"ssi-eval-{split.fingerprint()}"
    if vectors and engine.exists(f"/{index}"):
        try:
            ensure_vector_field(engine, index)
        except InputError as exc:  # an evaluation index is a cache: rebuilt, not migrated
            log(f"{index} cannot hold vectors ({exc}); ingesting it anew")
            engine.request("DELETE", f"/{index}")

    seen = ingest_documents(engine, split.seen_documents, annotator, index=index, work_dir=options.work_dir,
                            vectors=vectors, progress=options.progress, log=log)
    examples = _training_examples(engine, index, seen)
    folders = {variant.name: ensure_trained(variant, examples, options.work_dir / "models", progress=options.progress, log=log)
               for variant in options.variants}
    indexed = seen
    if split.unseen:
        log(f"{len(split.unseen)} images were held back from training; ingesting them now")
        indexed = ingest_documents(engine, split.documents, annotator, index=index, work_dir=options.work_dir,
                                   vectors=vectors, progress=options.progress, log=log)
    queries = [query for query in split.queries if query.relevant in indexed]
    if not queries:
        raise InputError("no query is left: none of the images it was written for could be ingested")

    family_of = {variant.name: variant.family for variant in options.variants}
    results = []
    for name in names:
        log(f"{name}: asking {len(queries)} queries")
        retriever, description = _open_retriever(name, engine, index, indexed, options.variants, folders)
        result = run_queries(retriever, queries, k=options.k, description=description, progress=options.progress)
        results.append(result.model_copy(update={"family": family_of.get(name), **split_metrics(result.outcomes, split.unseen)}))
        del retriever
        gc.collect()
    return EvalReport(
        dataset=dataset, index=index, engine=f"{engine.kind} {engine.info.version}", images=len(indexed),
        queries=len(queries), skipped_images=[*split.skipped, *(d.id for d in split.documents if d.id not in indexed)],
        unseen_images=sorted(split.unseen & set(indexed)), k=options.k,
        models={name: {"folder": str(folder), "precision": generator_precision()} for name, folder in folders.items()},
        results=results,
        comparisons=compare_retrievers(results),
    )


def ingest_documents(
    engine: EngineClient, documents: Sequence[ImageRecord], annotator: Annotator, *, index: str, work_dir: Path,
    progress: bool, log: Log, vectors: bool = False
) -> dict[str, SSIRecord]:
    """Ingest the first captions (resuming; ``vectors``: with their embeddings) and return the identified images
    among ``documents``, by id."""
    from ssi_plugin.indexing import ingest
    from ssi_plugin.indexing.documents import indexed_records

    log(f"Ingesting {len(documents)} images (first caption each) into {engine.kind} {index} with {annotator.version}")
    failures = work_dir / f"{index}.failures.jsonl"
    summary = ingest(engine, documents, annotator, index=index, failures=failures, total=len(documents), vectors=vectors,
                     progress=progress)
    log(f"{summary.indexed} indexed, {summary.skipped} already there, {summary.failed} failed")
    wanted = {document.id for document in documents}
    indexed = {record.id: record for record in indexed_records(engine, index) if record.id in wanted}
    if not indexed:
        raise PartialFailure(f"no image could be ingested; see {failures}", failed=len(wanted), recorded_at=str(failures))
    return dict(sorted(indexed.items()))


def _training_examples(engine: EngineClient, index: str, indexed: dict[str, SSIRecord]) -> list[TrainingExample]:
    """(ingested caption -> identifier + rationale) of the split's images, in id order (a stable cache key);
    the queries are never trained on."""
    from ssi_plugin.indexing.documents import training_examples

    return sorted((e for e in training_examples(engine, index) if e.image_id in indexed), key=lambda e: e.image_id or "")


def split_metrics(outcomes: Sequence[QueryOutcome], unseen: frozenset[str]) -> dict[str, RetrievalMetrics | None]:
    """``seen`` and ``unseen`` metric blocks (both None when no image was held back; one None when it has no query)."""
    if not unseen:
        return {"seen": None, "unseen": None}
    parts = {"seen": [o for o in outcomes if o.relevant not in unseen], "unseen": [o for o in outcomes if o.relevant in unseen]}
    return {name: summarize(part) if part else None for name, part in parts.items()}


def run_queries(retriever: Retriever, queries: Sequence[EvalQuery], *, k: int, description: str = "",
                progress: bool = True) -> RetrieverResult:
    """Every query once (after one untimed warm-up), timed with a monotonic clock."""
    retriever.retrieve(queries[0].text, k)
    outcomes = []
    with progress_bar(retriever.name, total=len(queries), enabled=progress) as advance:
        for query in queries:
            started = time.perf_counter()
            ranked = retriever.retrieve(query.text, k)
            latency_ms = (time.perf_counter() - started) * 1000
            outcomes.append(QueryOutcome(query=query.text, relevant=query.relevant, ranked=tuple(ranked), latency_ms=latency_ms))
            advance(1)
    return RetrieverResult(name=retriever.name, description=description, metrics=summarize(outcomes), outcomes=outcomes)


def _open_retriever(name: str, engine: EngineClient, index: str, indexed: dict[str, SSIRecord],
                    variants: Sequence[ModelVariant], folders: dict[str, Path]) -> tuple[Retriever, str]:
    from ssi_plugin.embedding import shared_encoder
    from ssi_plugin.evaluation.retrievers import BM25Retriever

    if name == "bm25":
        from ssi_plugin.indexing.documents import CAPTION_FIELD

        return BM25Retriever(engine, index, field=CAPTION_FIELD), f"the engine's BM25 on the `{CAPTION_FIELD}` field"
    if name == "dense-minilm":
        from ssi_plugin.evaluation.dense import DenseRetriever

        ids = list(indexed)
        return (DenseRetriever(shared_encoder(), ids, [indexed[i].caption or "" for i in ids]),
                "all-MiniLM-L6-v2 embeddings of the ingested captions, exact cosine search")
    if name == "dense-engine":
        from ssi_plugin.evaluation.retrievers import DenseEngineRetriever

        return (DenseEngineRetriever(engine, index, shared_encoder()),
                "the same embeddings searched by the engine's kNN search (HNSW) over the caption vectors")
    variant = next(v for v in variants if v.name == name)
    pairs = [(r.ssi.id, r.id) for r in indexed.values()]
    return (open_generator_retriever(engine, index, folders[name], name=name, pairs=pairs, search=variant.search),
            variant.description)


def open_generator_retriever(engine: EngineClient, index: str, folder: Path, *, name: str,
                             pairs: Sequence[tuple[str, str]], search: Mapping[str, Any] | None = None) -> Retriever:
    """An SSI generator searches the index (its trie rebuilt from ``pairs``, the index's identifiers);
    a numeric-id generator answers from its own trie."""
    from transformers import AutoTokenizer

    from ssi_plugin.evaluation.retrievers import GenerativeRetriever, SSIRetriever
    from ssi_plugin.generation.generator import Generator, build_trie
    from ssi_plugin.generation.spec import GeneratorSpec
    from ssi_plugin.search import SSISearcher

    if GeneratorSpec.load(folder).identifier_kind == "numeric":
        return GenerativeRetriever(Generator.load(folder), name=name)
    # The folder's own trie is not read: it may hold other identifiers, or predate the trie's current layout.
    generator = Generator.load(folder, trie=build_trie(AutoTokenizer.from_pretrained(folder), pairs))
    return SSIRetriever(SSISearcher(engine, generator, index=index), name=name, options=search)
