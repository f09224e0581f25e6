"""Hybrid search on both engines: caption vectors written at ingest, the engine's kNN search as a dense leg of the
``ssi`` clause, and the errors a user gets when vectors are missing or of the wrong size.

The generator is the tiny random one of ``tiny_generator`` (wiring, not quality); the vectors are real
all-MiniLM-L6-v2 embeddings, so the dense leg finds a paraphrase by meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.embedding import shared_encoder
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.vectors import VECTOR_FIELD
from ssi_plugin.errors import InputError
from ssi_plugin.evaluation.dense import DenseRetriever
from ssi_plugin.evaluation.retrievers import DenseEngineRetriever
from ssi_plugin.indexing import ingest
from ssi_plugin.indexing.vectors import CaptionVectors
from ssi_plugin.search import SSIQuery, SSISearcher

pytestmark = pytest.mark.engine

KITTEN = "a kitten napping on a couch"
"""Shares no word with img-3's caption ("a cat asleep on a sofa"): only meaning finds it."""


@pytest.fixture
def vector_index(engine: EngineClient, index_name: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = index_with_generator(engine, index_name, tmp_path)
    yield index_name, folder


def _with_vectors(engine: EngineClient, index: str) -> None:
    embedder = CaptionVectors(engine, index, caption_field="caption")
    hits = engine.search(index, {"size": 100, "query": {"match_all": {}}})["hits"]["hits"]
    documents = {hit["_id"]: {"caption": hit["_source"]["caption"]} for hit in hits}
    assert embedder.add(list(documents.values())) == len(IMAGES)
    actions = ({"_op_type": "update", "_index": index, "_id": doc_id, "doc": {VECTOR_FIELD: doc[VECTOR_FIELD]}}
               for doc_id, doc in documents.items())
    assert all(outcome.ok for outcome in engine.bulk(actions, refresh=True))


def test_the_dense_leg_finds_a_paraphrase_and_explain_shows_its_share(engine: EngineClient, vector_index) -> None:
    index, folder = vector_index
    _with_vectors(engine, index)
    searcher = SSISearcher.open(engine, index, model_dir=folder)
    plain = searcher.search(SSIQuery(query=KITTEN, explain=True), size=4)
    hybrid = searcher.search(SSIQuery(query=KITTEN, hybrid=True, explain=True), size=4)
    assert "dense" not in plain.lists
    assert hybrid.lists["dense"] == len(IMAGES)
    assert hybrid.hits[0].id == "img-3"
    top = hybrid.hits[0]
    assert top.ranks["dense"] == 1 and top.shares["dense"] > 0
    assert top.score == pytest.approx(sum(top.shares.values()))

    answer = searcher.search_request(index, {"query": {"ssi": {"query": KITTEN, "hybrid": True}}, "explain": True}, {})
    details = answer["hits"]["hits"][0]["_explanation"]["details"]
    assert any(detail["description"] == "dense list, rank 1" for detail in details)

    # a caller's own vector for the field: the same leg, no embedding made here
    own = shared_encoder().encode([KITTEN])[0].tolist()
    mine = searcher.search(SSIQuery(query=KITTEN, query_vector=own), size=4)
    assert [hit.id for hit in mine.hits] == [hit.id for hit in hybrid.hits]
    # filters reach the dense leg too: every hit passes them
    dogs = searcher.search(SSIQuery(query=KITTEN, hybrid=True, filter={"term": {"ssi.objects": "dog"}}), size=4)
    assert {hit.id for hit in dogs.hits} == {"img-1", "img-2"}
    searcher.close()


def test_the_engine_knn_ranks_as_exact_search_does(engine: EngineClient, vector_index) -> None:
    index, _ = vector_index
    _with_vectors(engine, index)
    ids = list(IMAGES)
    exact = DenseRetriever(shared_encoder(), ids, [caption for _, caption in IMAGES.values()])
    in_engine = DenseEngineRetriever(engine, index, shared_encoder())
    for query in (KITTEN, "a puppy playing with a flying disc", "kid playing football outside"):
        assert in_engine.retrieve(query, 4) == exact.retrieve(query, 4)


def test_wrong_sizes_and_missing_vectors_are_named(engine: EngineClient, vector_index) -> None:
    index, folder = vector_index
    searcher = SSISearcher.open(engine, index, model_dir=folder)
    with pytest.raises(InputError, match=rf"holds no vector in field \[{VECTOR_FIELD}\].*--vectors"):
        searcher.search(SSIQuery(query=KITTEN, hybrid=True))
    _with_vectors(engine, index)
    with pytest.raises(Exception, match=rf"\[{VECTOR_FIELD}\].*\b5\b.*\b384\b|\[{VECTOR_FIELD}\].*\b384\b.*\b5\b") as short:
        searcher.search(SSIQuery(query=KITTEN, query_vector=[0.1] * 5))
    assert getattr(short.value, "status", 400) == 400
    with pytest.raises(Exception, match=r"no_such_vectors"):
        searcher.search(SSIQuery(query=KITTEN, vector_field="no_such_vectors"))
    searcher.close()


def test_ingest_writes_vectors_and_gives_them_to_documents_indexed_without(engine: EngineClient, index_name: str,
                                                                         tmp_path: Path) -> None:
    records = [ImageRecord(id="dog", captions=("A brown dog catches a red frisbee in the park.",)),
               ImageRecord(id="cat", captions=("A black cat sleeps on a sofa in the living room.",))]
    with create_annotator("caption") as annotator:
        first = ingest(engine, records[:1], annotator, index=index_name, failures=tmp_path / "f1.jsonl", progress=False)
        assert first.vectors == 0
        second = ingest(engine, records, annotator, index=index_name, failures=tmp_path / "f2.jsonl", vectors=True,
                        progress=False)
        again = ingest(engine, records, annotator, index=index_name, failures=tmp_path / "f3.jsonl", vectors=True,
                       progress=False)
    assert (second.indexed, second.skipped, second.vectors) == (1, 1, 2)  # the cat is new, the dog gets its vector
    assert (again.indexed, again.skipped, again.vectors) == (0, 2, 0)
    hits = engine.search(index_name, {"size": 10, "_source": ["caption", VECTOR_FIELD, "ssi.id"]})["hits"]["hits"]
    assert {hit["_id"]: len(hit["_source"][VECTOR_FIELD]) for hit in hits} == {"dog": 384, "cat": 384}
    assert all(hit["_source"]["ssi"]["id"] for hit in hits)  # the update kept the identifier
    nearest = DenseEngineRetriever(engine, index_name, shared_encoder()).retrieve("a kitty asleep on the couch", 1)
    assert nearest == ["cat"]
