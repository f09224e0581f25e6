"""The index is the source of truth: a running searcher takes in what any client writes or deletes, replicas agree,
bad documents are left out, and an unreachable cluster leaves the trie answering (and says how stale it is)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tiny_generator import IMAGES, index_with_generator
from tiny_models import before_each_decoder_call

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient
from ssi_plugin.identifiers import SSI, SSIRecord, query_words
from ssi_plugin.search import SSIQuery, SSISearcher
from ssi_plugin.search.plan import LIST_WEIGHTS

pytestmark = pytest.mark.engine

NEW = SSI(objects=("bicycle", "lamppost"), attributes=("red",), scene=("snow",))


def _write(engine: EngineClient, index: str, doc_id: str, identifier: str, caption: str) -> None:
    fields = SSIRecord(id=doc_id, ssi=SSI.parse(identifier), rationale="Test.", annotator="test", version="1").index_fields()
    engine.request("PUT", f"/{index}/_doc/{doc_id}", body={"caption": caption, "ssi": fields}, params={"refresh": "true"})


def _eventually(check: Callable[[], bool], *, seconds: float = 5.0) -> float:
    """Seconds until ``check`` holds; fails after ``seconds``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def live(engine: EngineClient, index_name: str, tmp_path: Path) -> Iterator[tuple[SSISearcher, Path]]:
    folder = index_with_generator(engine, index_name, tmp_path)
    searcher = SSISearcher.open(engine, index_name, model_dir=folder, cache_dir=tmp_path / "cache", poll=0.1)
    yield searcher, folder
    searcher.close()


def _candidates(searcher: SSISearcher, text: str) -> list[str]:
    return [c.identifier for c in searcher.search(SSIQuery(query=text, k=10), size=10).generation.candidates]


def test_an_image_written_by_another_client_is_found_and_a_deleted_one_is_not(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    searcher, _ = live
    assert NEW.id not in _candidates(searcher, "a red bicycle by a lamppost in the snow")
    _write(engine, index_name, "img-new", NEW.id, "a red bicycle leaning on a lamppost in the snow")
    _eventually(lambda: searcher.trie.view.identifier_of("img-new") == NEW.id)
    assert NEW.id in _candidates(searcher, "a red bicycle by a lamppost in the snow")  # the generator may write it now
    hits = searcher.search(SSIQuery(query="a red bicycle by a lamppost in the snow", explain=True), size=5).hits
    assert hits[0].id == "img-new" and hits[0].identifier == NEW.id
    assert searcher.trie.health().images == len(IMAGES) + 1 and searcher.trie.view.base.index.image_count == len(IMAGES)

    gone = IMAGES["img-3"][0].id
    engine.request("DELETE", f"/{index_name}/_doc/img-3", params={"refresh": "true"})
    _eventually(lambda: searcher.trie.view.identifier_of("img-3") is None)
    assert gone not in _candidates(searcher, "a cat asleep on a sofa")
    assert "img-3" not in [hit.id for hit in searcher.search("a cat asleep on a sofa", size=10).hits]
    health = searcher.trie.health()
    assert (health.images, health.error, health.rejected) == (len(IMAGES), None, 0) and health.stale_seconds < 5


def test_a_new_image_is_found_by_a_paraphrase_through_its_related_concepts(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    searcher, _ = live
    paraphrase = "a stallion feeding on a meadow"  # none of these words is a concept of any image
    _write(engine, index_name, "img-horse", "objects: horse | actions: graze | scene: pasture", "a horse in a pasture")
    _eventually(lambda: "horse" in searcher.vocabulary.related(searcher.generator.trie, query_words("stallion")).get("stallion", {}))
    result = searcher.search(SSIQuery(query=paraphrase, explain=True), size=3)
    assert result.hits[0].id == "img-horse" and "related" in result.hits[0].ranks
    assert result.lists["terms"] == 0 and result.lists["related"] >= 1


def test_the_query_words_list_scores_an_image_by_the_share_of_the_query_it_explains(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    """All four words of the query: the list's whole weight; one plain word ("red"): a quarter of it, whatever the
    engine's idf makes of the words (``explain`` shows each list's share)."""
    searcher, _ = live
    _write(engine, index_name, "img-new", NEW.id, "a red bicycle leaning on a lamppost in the snow")
    _write(engine, index_name, "img-red", SSI(objects=("mailbox",), attributes=("red",)).id, "a red mailbox")
    _eventually(lambda: searcher.trie.health().images == len(IMAGES) + 2)
    query = SSIQuery(query="a red bicycle by a lamppost in the snow", explain=True)
    hits = {hit.id: hit for hit in searcher.search(query, size=10).hits}
    assert hits["img-new"].shares["terms"] == pytest.approx(LIST_WEIGHTS["terms"])
    assert hits["img-red"].shares["terms"] == pytest.approx(LIST_WEIGHTS["terms"] / 4)


def test_replicas_from_one_folder_answer_alike_after_a_third_client_writes(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path], tmp_path: Path) -> None:
    first, folder = live
    second = SSISearcher.open(engine, index_name, model_dir=folder, cache_dir=tmp_path / "cache", poll=0.1)
    try:
        for n, concepts in enumerate((("bicycle",), ("dog", "sled"), ("kite", "park bench"))):
            _write(engine, index_name, f"more-{n}", SSI(objects=concepts).id, " ".join(concepts))
        for searcher in (first, second):
            _eventually(lambda s=searcher: s.trie.health().images == len(IMAGES) + 3)
        for text in ("a dog running on the beach", "a bicycle", "kite flying over a park bench", "cat", "zzz"):
            answers = [[(hit.id, round(hit.score, 6)) for hit in s.search(text, size=10).hits] for s in (first, second)]
            assert answers[0] == answers[1], text
    finally:
        second.close()


def test_documents_whose_identifier_does_not_parse_are_left_out_and_counted(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path], caplog: pytest.LogCaptureFixture) -> None:
    searcher, _ = live
    engine.request("PUT", f"/{index_name}/_doc/broken", params={"refresh": "true", "pipeline": "_none"},
                   body={"caption": "broken", "ssi": {"id": "Objects: Not Canonical"}})
    _eventually(lambda: searcher.trie.health().rejected == 1)
    assert searcher.trie.view.identifier_of("broken") is None and searcher.search("a dog", size=10).hits
    assert any("does not parse" in record.getMessage() for record in caplog.records)


def test_an_emptied_index_gives_no_candidates_and_no_error(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    searcher, _ = live
    for doc_id in IMAGES:
        engine.request("DELETE", f"/{index_name}/_doc/{doc_id}", params={"refresh": "true"})
    _eventually(lambda: searcher.trie.health().images == 0)
    result = searcher.search("a dog catching a frisbee", size=5)
    assert result.hits == [] and result.generation.candidates == []


def test_an_unreachable_cluster_leaves_the_trie_answering_and_says_how_stale_it_is(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    from ssi_plugin.engine.client import _transport_for

    searcher, _ = live
    before = searcher.trie.view
    dead = EngineSettings(url="http://127.0.0.1:9", request_timeout=1)
    searcher.trie._feed.engine = EngineClient(engine.info.model_copy(update={"url": dead.url}), _transport_for(engine.info, dead), dead)
    _eventually(lambda: searcher.trie.health().error is not None)
    time.sleep(0.3)
    health = searcher.trie.health()
    assert "EngineUnreachable" in health.error and health.stale_seconds >= 0.3
    # Each model call outlasts a read of the trie (every 0.1 s): reads fail while the query decodes, and the query,
    # whose own search found the engine answering, is answered all the same.
    with before_each_decoder_call(searcher.generator, lambda: time.sleep(0.25)):
        assert searcher.trie.view is before and _candidates(searcher, "a dog in the park")


def test_during_an_outage_a_query_fails_at_once_without_waiting_for_the_generator(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    from ssi_plugin.engine.client import _transport_for
    from ssi_plugin.errors import EngineUnreachable

    searcher, _ = live
    dead = EngineSettings(url="http://127.0.0.1:9", request_timeout=1)
    down = EngineClient(engine.info.model_copy(update={"url": dead.url}), _transport_for(engine.info, dead), dead)
    searcher.trie._feed.engine = searcher.engine = down
    _eventually(lambda: searcher.trie.unavailable is not None)
    decoded: list[int] = []
    with before_each_decoder_call(searcher.generator, lambda: decoded.append(1)):
        with pytest.raises(EngineUnreachable, match=r"127\.0\.0\.1:9\b"):
            searcher.search("a dog in the park")
        assert not decoded, "the query waited for the generator before finding the engine gone"
        searcher.trie._feed.engine = searcher.engine = engine  # the engine is back: queries answer again
        assert searcher.search("a dog in the park").hits
        assert decoded


def test_while_the_index_cannot_be_searched_a_query_fails_at_once_with_the_engines_error(
        engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path]) -> None:
    """A node back but its index not searchable yet (a red index: here one whose shard may go on no node) answers
    503: queries find out with one small search, not after their turn at the generator."""
    from ssi_plugin.errors import EngineRequestError

    searcher, _ = live
    red = f"{index_name}-red"
    engine.request("PUT", f"/{red}", params={"wait_for_active_shards": "0"}, body={"settings": {
        "number_of_shards": 1, "number_of_replicas": 0, "index.routing.allocation.require._name": "no-such-node"}})
    searcher.index = searcher.trie._feed.index = red
    _eventually(lambda: searcher.trie.unavailable is not None)
    assert "503" in str(searcher.trie.unavailable)
    decoded: list[int] = []
    with before_each_decoder_call(searcher.generator, lambda: decoded.append(1)):
        with pytest.raises(EngineRequestError) as failed:
            searcher.search("a dog in the park")
        assert failed.value.status == 503 and not decoded, "the query waited for the generator before finding the index red"
        searcher.index = searcher.trie._feed.index = index_name  # searchable again: queries answer again
        _eventually(lambda: searcher.trie.unavailable is None)
        assert searcher.search("a dog in the park").hits
        assert decoded


def test_a_second_searcher_resumes_from_the_trie_cache(engine: EngineClient, index_name: str, live: tuple[SSISearcher, Path],
                                                       tmp_path: Path) -> None:
    _, folder = live
    cached = sorted((tmp_path / "cache" / "tries" / index_name).glob("*/*/sync.json"))
    assert cached, "the first read of the index is saved for the next searcher"
    _write(engine, index_name, "later", NEW.id, "a red bicycle")
    again = SSISearcher.open(engine, index_name, model_dir=folder, cache_dir=tmp_path / "cache")
    assert again.trie.view.identifier_of("later") == NEW.id  # read since the cached watermarks, not from scratch
    assert again.trie.view.delta is not None and again.trie.view.base.index.image_count == len(IMAGES)
