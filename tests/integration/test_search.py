"""`ssi-plugin search`: hits in the terminal, in the engine's own format, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import EngineRequestError
from ssi_plugin.generation.generator import Candidate, GenerationResult
from ssi_plugin.identifiers import SSI, SSIRecord
from ssi_plugin.indexing.documents import DOC_ID_FIELD, ids_in_doc_values
from ssi_plugin.search import SSIQuery, SSISearcher
from ssi_plugin.search.plan import LIST_WEIGHTS

pytestmark = pytest.mark.engine


def _search(engine: EngineClient, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ssi_plugin", "--url", engine.url, "--cache-dir", str(cache_dir), "search", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_search_json_speaks_the_engines_format_and_explains_hits(engine: EngineClient, index_name: str, tmp_path: Path) -> None:
    index_with_generator(engine, index_name, tmp_path)
    done = _search(engine, tmp_path, "a dog in the park", "--index", index_name, "--json", "--size", "3")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    hits = answer["hits"]["hits"]
    assert 1 <= len(hits) <= 3
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    for hit in hits:
        identifier = IMAGES[hit["_id"]][0]
        assert hit["_ssi"]["identifier"] == identifier.id
        assert set(hit["_ssi"]["matched_concepts"]) <= set(identifier.concepts)
        assert hit["_source"]["caption"] == IMAGES[hit["_id"]][1]

    readable = _search(engine, tmp_path, "a dog in the park", "--index", index_name, "--explain", "--size", "2")
    assert readable.returncode == 0, readable.stderr
    assert "matched:" in readable.stdout and hits[0]["_id"] in readable.stdout


def test_the_lists_read_hit_ids_from_doc_values_and_an_image_written_without_one_is_still_found(
        engine: EngineClient, index_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While every document holds its id in ``ssi_doc_id``, the lists ask for no stored field (``_id`` is read from the
    block that holds the whole ``_source``); an image written without the field (no pipeline: as before it existed) is
    still found under its own id, by asking again with stored ids, as the next queries do."""
    folder = index_with_generator(engine, index_name, tmp_path)
    ids = [{"_op_type": "update", "_index": index_name, "_id": doc_id, "doc": {DOC_ID_FIELD: doc_id}} for doc_id in IMAGES]
    assert all(item.ok for item in engine.bulk(ids, refresh=True)), "the Elasticsearch core node runs no pipeline"
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)
    assert searcher.ids_in_doc_values
    asked: list[dict[str, Any]] = []
    msearch = engine.msearch

    def spied(index: str, bodies: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        asked.extend(dict(body) for body in bodies)  # as sent: a body asked again is changed in place
        return msearch(index, bodies, **kwargs)

    monkeypatch.setattr(engine, "msearch", spied)
    result = searcher.search(SSIQuery(query="a dog catching a frisbee in a park", explain=True), size=4, source=False)
    assert result.hits and all(hit.identifier == IMAGES[hit.id][0].id for hit in result.hits)
    assert asked and all(body["stored_fields"] == "_none_" for body in asked)
    assert all("fields" not in hit for hit in result.as_engine_response()["hits"]["hits"]), "the id field is not shown"

    engine.request("PUT", f"/{index_name}/_doc/img-5", params={"refresh": "true", "pipeline": "_none"}, body={
        "caption": "a red bicycle leaning on a lamppost in the snow",
        "ssi": SSIRecord(id="img-5", ssi=SSI(objects=("bicycle", "lamppost")), rationale="Test.", annotator="test",
                         version="1").index_fields()})
    asked.clear()
    snowy = searcher.search(SSIQuery(query="snow", explain=True), size=10, source=False)
    assert "img-5" in [hit.id for hit in snowy.hits], "found by its caption, under its id"
    assert [body.get("stored_fields") for body in asked] == ["_none_"] * (len(asked) // 2) + [None] * (len(asked) // 2)
    assert not searcher.ids_in_doc_values and not ids_in_doc_values(engine, index_name)
    asked.clear()
    assert searcher.search(SSIQuery(query="snow"), size=10, source=False).hits
    assert asked and not any("stored_fields" in body for body in asked), "one request per query again"


def test_the_caption_finds_an_image_by_a_word_its_identifier_left_out(engine: EngineClient, index_name: str,
                                                                      tmp_path: Path) -> None:
    folder = index_with_generator(engine, index_name, tmp_path)
    ssi = SSI(objects=("bicycle", "lamppost"))
    engine.request("PUT", f"/{index_name}/_doc/img-5", params={"refresh": "true"}, body={
        "caption": "a red bicycle leaning on a lamppost in the snow",
        "ssi": SSIRecord(id="img-5", ssi=ssi, rationale="Test.", annotator="test", version="1").index_fields()})
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)

    result = searcher.search(SSIQuery(query="snow", explain=True), size=10)
    assert result.lists["bm25"] == 1, "the caption's BM25 list, by default"
    assert result.generate_ms > 0 and result.engine_ms > 0
    without = searcher.search(SSIQuery(query="snow", bm25_field=None, explain=True), size=10)
    assert "bm25" not in without.lists
    bm25 = {hit.id: hit.shares["bm25"] for hit in result.hits if "bm25" in hit.shares}
    assert bm25 == {"img-5": pytest.approx(LIST_WEIGHTS["bm25"])}  # only the snowy image's caption says it
    assert not any("bm25" in hit.shares for hit in without.hits)
    named = searcher.search(SSIQuery(query="cat sofa", bm25_field="caption", fusion="rrf", explain=True), size=4)
    assert next(hit.id for hit in named.hits if "bm25" in hit.ranks) == "img-3"

    both = _search(engine, tmp_path, "snow", "--index", index_name, "--bm25-field", "caption", "--no-bm25")
    assert both.returncode == 2 and "bm25_field='caption' names the BM25 list's field and bm25=False" in both.stderr
    assert "Traceback" not in both.stderr


def test_missing_index_and_missing_generator_are_clear(engine: EngineClient, index_name: str, tmp_path: Path) -> None:
    missing_index = _search(engine, tmp_path, "a dog", "--index", f"{index_name}-absent")
    assert missing_index.returncode == 2
    assert f"index '{index_name}-absent' does not exist" in missing_index.stderr
    assert "Traceback" not in missing_index.stderr

    engine.request("PUT", f"/{index_name}")
    no_model = _search(engine, tmp_path, "a dog", "--index", index_name)
    assert no_model.returncode == 5, no_model.stderr
    assert "Traceback" not in no_model.stderr


def test_a_query_nothing_can_place_still_answers_and_names_the_empty_lists(engine: EngineClient, index_name: str,
                                                                             tmp_path: Path) -> None:
    folder = index_with_generator(engine, index_name, tmp_path)
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)
    foreign = searcher.search(SSIQuery(query="狗在公园里", explain=True), size=5)
    assert foreign.hits == [] and foreign.empty_lists == ["exact", "concepts", "terms", "related", "meaning", "bm25"]
    explained = foreign.as_engine_response()["_ssi"]
    assert explained["empty_lists"] == ["exact", "concepts", "terms", "related", "meaning", "bm25"]
    assert "vocabulary" in explained["warnings"][0]

    mixed = searcher.search(SSIQuery(query="狗 and a frisbee", bm25_field="caption", explain=True), size=5)
    assert mixed.hits[0].id == "img-1" and mixed.lists["terms"] >= 1 and mixed.lists["bm25"] >= 1

    only_function_words = searcher.search(SSIQuery(query="the of and with", explain=True), size=5)
    assert "terms" in only_function_words.empty_lists and only_function_words.lists["exact"] >= 1  # the generator still answers

    done = _search(engine, tmp_path, "狗在公园里", "--index", index_name)
    assert done.returncode == 0 and "these lists found nothing: exact, concepts, terms, related, meaning, bm25" in done.stderr


def test_an_image_is_the_query_of_the_command(engine: EngineClient, index_name: str, tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    index_with_generator(engine, index_name, tmp_path)
    photo = tmp_path / "cat.png"
    Image.fromarray(data.chelsea()).save(photo)  # a photograph of a cat
    done = _search(engine, tmp_path, "--image", str(photo), "--index", index_name, "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["_ssi"]["query_image"]["identifier"] == "objects: cat"
    assert answer["_ssi"]["candidates"] == [{"identifier": "objects: cat", "score": 0.0}]
    assert [hit["_id"] for hit in answer["hits"]["hits"]] == ["img-3"]  # the one cat

    captioned = _search(engine, tmp_path, "a dog on the beach", "--image", str(photo), "--index", index_name, "--json")
    assert captioned.returncode == 0, captioned.stderr
    found = json.loads(captioned.stdout)
    assert found["_ssi"]["query_image"]["identifier"] == "objects: cat, dog | scene: beach"  # the text is its caption
    ids = [hit["_id"] for hit in found["hits"]["hits"]]
    assert ids[0] == "img-2" and "img-3" in ids  # the dog on the beach first; the cat too

    words = tmp_path / "notes.png"
    words.write_text("words, not pixels")
    refused = _search(engine, tmp_path, "--image", str(words), "--index", index_name)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"InputError: {words} is not an image in a known format"


def test_a_sure_generator_is_trusted_unless_an_image_found_explains_more_of_the_query(
        engine: EngineClient, index_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator's answer is fixed here (0.99 of the beam's mass on the sofa cat, as a trained generator may put it
    for a paraphrase of an image ingested after training): the tiny random one cannot be made sure on purpose."""
    folder = index_with_generator(engine, index_name, tmp_path)
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)
    sure = GenerationResult(query="", query_tokens=4, candidates=[
        Candidate(identifier=IMAGES["img-3"][0].id, score=-0.01, image_ids=("img-3",)),
        Candidate(identifier=IMAGES["img-1"][0].id, score=-5.0, image_ids=("img-1",))])
    monkeypatch.setattr(searcher.generator, "generate", lambda *args, **kwargs: sure)

    trusted = searcher.search(SSIQuery(query="a cat sleeping on the sofa", explain=True), size=5)
    assert trusted.hits[0].id == "img-3"
    assert trusted.lists["related"] == trusted.lists["bm25"] == 0, "a sure generator of the image that explains most"

    ssi = SSI(objects=("kitten", "laptop"))
    engine.request("PUT", f"/{index_name}/_doc/img-5", params={"refresh": "true"}, body={
        "caption": "a kitten napping on a laptop keyboard",
        "ssi": SSIRecord(id="img-5", ssi=ssi, rationale="Test.", annotator="test", version="1").index_fields()})
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)
    monkeypatch.setattr(searcher.generator, "generate", lambda *args, **kwargs: sure)
    # The new image explains two of the five words (kitten, laptop), the sofa cat one (and "napping" loosely): the
    # lists that find what the generator cannot name are fused, and credit the new image.
    looked_past = searcher.search(SSIQuery(query="a kitten napping on a laptop keyboard by the sofa", explain=True), size=5)
    assert looked_past.lists["related"] >= 1 and looked_past.lists["bm25"] >= 1
    new_image = next(hit for hit in looked_past.hits if hit.id == "img-5")
    assert new_image.shares["bm25"] == pytest.approx(LIST_WEIGHTS["bm25"]) and new_image.shares["related"] > 0
    # every image the lists found is also scored by how close its identifier is to the whole query: the kitten on the
    # laptop is the closest, so it holds the meaning list's whole weight
    assert looked_past.lists["meaning"] >= 2
    assert new_image.ranks["meaning"] == 1 and new_image.shares["meaning"] == pytest.approx(LIST_WEIGHTS["meaning"])


def test_a_query_text_over_the_engines_clause_limit_is_the_requests_fault(engine: EngineClient, index_name: str,
                                                                         tmp_path: Path) -> None:
    """OpenSearch answers a match over more than 1,024 words with a 500 (too_many_clauses); the searcher says 400.
    Elasticsearch 9 sizes its limit by the heap and answers."""
    searcher = SSISearcher.open(engine, index_name, model_dir=index_with_generator(engine, index_name, tmp_path))
    # No BM25 list: the page's highlight is what meets the limit, while the engine fetches the hits.
    body = {"query": {"ssi": {"query": "dog " * 1100, "bm25_field": None}}, "highlight": {"fields": {"caption": {}}}}
    if engine.kind == "elasticsearch":
        assert searcher.search_request(index_name, body, {})["hits"]["hits"]
        return
    with pytest.raises(EngineRequestError) as raised:
        searcher.search_request(index_name, body, {})
    assert raised.value.status == 400 and "maxClauseCount" in raised.value.reason


def test_a_query_alone_asks_its_own_lists_while_the_generator_runs_and_gets_the_same_answer(
        engine: EngineClient, index_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no other query in flight the machine's other core is idle: the terms, related and BM25 lists are asked
    (and their leading images' phrases embedded) while the generator runs. Among other queries they wait for it and
    go in the one request. The answer is the same either way."""
    searcher = SSISearcher.open(engine, index_name, model_dir=index_with_generator(engine, index_name, tmp_path))
    events: list[str] = []
    generate, msearch = searcher.generator.generate, searcher.engine.msearch

    def slow_generate(*args: Any, **kwargs: Any) -> GenerationResult:
        events.append("generating")
        result = generate(*args, **kwargs)
        time.sleep(0.5)  # long enough for the engine to answer meanwhile
        events.append("generated")
        return result

    def asked(body: dict[str, Any]) -> str:
        text = json.dumps(body)
        generated = '"term": {"ssi.id"' in text or '"term": {"ssi.concepts"' in text  # the exact and concepts lists
        return "page" if '"ids"' in text else "generator's lists" if generated else "query's lists"

    def recorded_msearch(index: str, bodies: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        events.append(" + ".join(sorted({asked(body) for body in bodies})))
        return msearch(index, bodies, **kwargs)

    embedded_on: list[str] = []
    embed = searcher.meanings._embed

    def recorded_embed(phrases: Any) -> Any:
        embedded_on.append(threading.current_thread().name)
        return embed(phrases)

    monkeypatch.setattr(searcher.generator, "generate", slow_generate)
    monkeypatch.setattr(searcher.engine, "msearch", recorded_msearch)
    monkeypatch.setattr(searcher.meanings, "_embed", recorded_embed)
    query = SSIQuery(query="a dog catching a frisbee on the grass", explain=True)
    alone = searcher.search(query, size=5)
    assert embedded_on and embedded_on[0].startswith("ssi-early"), "the leading images' phrases, while it generated"
    assert sorted(events) == ["generated", "generating", "generator's lists", "page", "query's lists"]
    assert events.index("query's lists") < events.index("generated") < events.index("generator's lists") < events.index("page")
    events.clear()
    with searcher._in_flight:  # another query is being answered
        among_others = searcher.search(query, size=5)
    assert events == ["generating", "generated", "generator's lists + query's lists", "page"]
    assert alone.hits and [(hit.id, hit.score, hit.shares) for hit in alone.hits] == \
        [(hit.id, hit.score, hit.shares) for hit in among_others.hits]
    assert alone.lists == among_others.lists and alone.lists["terms"] and alone.lists["meaning"]
