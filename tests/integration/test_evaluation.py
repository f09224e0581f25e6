"""Retrievers and the whole eval job against the real engine, on a tiny fixture with tiny generators."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from tiny_models import tiny_model

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.embedding import MiniLMEncoder
from ssi_plugin.engine import EngineClient
from ssi_plugin.evaluation import (
    BM25Retriever,
    EvalOptions,
    EvalReport,
    ModelVariant,
    evaluate,
    write_report,
)
from ssi_plugin.evaluation.dense import DenseRetriever
from ssi_plugin.evaluation.run import open_generator_retriever
from ssi_plugin.generation.training import TrainingConfig

pytestmark = pytest.mark.engine

RECORDS = [
    ImageRecord(id="dog", captions=("A brown dog catches a red frisbee in the park.", "puppy leaping for a flying disc on the lawn")),
    ImageRecord(id="cat", captions=("A black cat sleeps on a sofa in the living room.", "kitten napping on the couch")),
    ImageRecord(id="boat", captions=("Two white boats float on a calm lake.", "sailing vessels resting on still water")),
    ImageRecord(id="bike", captions=("A man rides a bicycle down a city street.", "cyclist pedalling through town")),
    ImageRecord(id="pizza", captions=("A pizza with cheese and tomato on a wooden table.",)),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models run fastest on one thread; two threads on a busy 2-core machine spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


@pytest.fixture
def caption_index(engine: EngineClient, index_name: str) -> str:
    engine.request("PUT", f"/{index_name}", body={"settings": {"number_of_replicas": 0}})
    actions = [{"_op_type": "index", "_index": index_name, "_id": r.id, "_source": {"caption": r.captions[0]}} for r in RECORDS]
    assert all(item.ok for item in engine.bulk(actions, refresh=True))
    return index_name


def test_bm25_ranks_the_caption_that_shares_the_words(engine: EngineClient, caption_index: str) -> None:
    bm25 = BM25Retriever(engine, caption_index)
    assert bm25.name == "bm25"
    assert bm25.retrieve("red frisbee dog", 10)[0] == "dog"
    assert bm25.retrieve("boats lake", 10)[0] == "boat"
    assert len(bm25.retrieve("a on the", 2)) == 2
    assert bm25.retrieve("xylophone", 10) == []


def test_dense_finds_paraphrases_by_meaning(encoder: MiniLMEncoder) -> None:
    ids = [r.id for r in RECORDS]
    dense = DenseRetriever(encoder, ids, [r.captions[0] for r in RECORDS])
    assert dense.vectors.shape == (5, 384)
    assert float(abs((dense.vectors**2).sum(axis=1) - 1).max()) < 1e-4
    for record in RECORDS[:4]:
        assert dense.retrieve(record.captions[1], 10)[0] == record.id, record.captions[1]
    assert dense.retrieve("kitten napping on the couch", 2) == dense.retrieve("kitten napping on the couch", 10)[:2]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = [caption for record in RECORDS for caption in record.captions]
    model, tokenizer = tiny_model([*words, "objects actions attributes scene : , | #", "0 1 2 3 4 5 6 7 8 9"])
    folder = tmp_path_factory.mktemp("tiny-base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _variants(base: Path) -> tuple[ModelVariant, ...]:
    config = TrainingConfig(base=str(base), epochs=60, batch_size=4, learning_rate=1e-2, warmup_ratio=0.0, seed=1)
    return (ModelVariant(name="ssi", family="ssi", training=config),
            ModelVariant(name="numeric-ids", training=config.model_copy(update={"identifier_kind": "numeric", "rationale_weight": 0.0})),
            ModelVariant(name="ssi+dense", family="ssi+dense", training=config, trained_as="ssi", search={"hybrid": True}))


class Evaluated(NamedTuple):
    report: EvalReport
    options: EvalOptions
    log: list[str]


ONE_LEG = pytest.mark.opensearch_only(reason="the job's engine calls (ingest, BM25, SSI search) are tested on both engines by "
                                      "their own modules; one leg keeps this slow job's test to one run")


@pytest.fixture(scope="module")
def evaluated(engine: EngineClient, tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evaluated]:
    """One eval run over the fixture, into its own index (deleted afterwards)."""
    index = f"test-eval-{uuid.uuid4().hex[:8]}"
    options = EvalOptions(work_dir=tmp_path_factory.mktemp("eval-work"), index=index, variants=_variants(tiny_base), progress=False)
    lines: list[str] = []
    try:
        with create_annotator("caption") as annotator:
            yield Evaluated(evaluate(engine, RECORDS, annotator, options, dataset="tiny", log=lines.append), options, lines)
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})


@ONE_LEG
def test_eval_job_measures_every_retriever_and_reuses_its_work(engine: EngineClient, evaluated: Evaluated, tmp_path: Path) -> None:
    report = evaluated.report
    assert (report.images, report.queries, report.index) == (5, 4, evaluated.options.index)
    assert [result.name for result in report.results] == ["bm25", "dense-minilm", "dense-engine", "ssi", "numeric-ids", "ssi+dense"]
    for result in report.results:
        assert result.metrics.queries == 4
        assert 0 <= result.metrics.recall[1] <= result.metrics.recall[5] <= result.metrics.recall[10] <= 1
        assert all(set(o.ranked) <= {r.id for r in RECORDS} and len(o.ranked) <= 10 for o in result.outcomes)
        assert [o.relevant for o in result.outcomes] == ["dog", "cat", "boat", "bike"]
    assert report.result("dense-minilm").metrics.recall[1] == 1.0
    # the engine's kNN over the vectors ingest wrote ranks as the exact in-process search does
    assert [o.ranked for o in report.result("dense-engine").outcomes] == [o.ranked for o in report.result("dense-minilm").outcomes]
    assert report.result("ssi+dense").metrics.recall[1] >= report.result("ssi").metrics.recall[1]
    assert set(report.models) == {"ssi", "numeric-ids", "ssi+dense"}
    assert report.models["ssi+dense"] == report.models["ssi"]  # searched differently, trained once
    assert report.models["ssi"]["precision"] == "int8"  # the default a search loads the generator in
    assert report.result("ssi").family == "ssi" and report.seed_means == []  # a family of one seed has no mean to give
    assert any("5 indexed, 0 already there, 0 failed" in line for line in evaluated.log)
    pairs = {(c.a, c.b): c for c in report.comparisons}
    assert {("ssi", "dense-minilm"), ("ssi+dense", "dense-minilm"), ("ssi+dense", "ssi"), ("ssi", "numeric-ids")} <= set(pairs)
    assert pairs["dense-engine", "dense-minilm"].mrr.p_value == 1.0  # the same rankings
    assert not any(c.recall_at_1.significant or c.mrr.significant for c in report.comparisons)  # 4 queries prove nothing

    files = write_report(report, tmp_path / "eval.json")
    assert json.loads(files.json_path.read_text())["queries"] == 4
    assert "| dense-minilm | 100.0 |" in files.markdown.read_text()
    assert "| ssi+dense vs ssi |" in files.markdown.read_text()

    lines: list[str] = []
    with create_annotator("caption") as annotator:
        again = evaluate(engine, RECORDS, annotator, evaluated.options.model_copy(update={"variants": evaluated.options.variants[:1]}),
                         dataset="tiny", log=lines.append)
    assert any("0 indexed, 5 already there" in line for line in lines)
    assert any("ssi: reusing the model trained before" in line for line in lines)
    same = ("recall", "mrr")
    assert again.result("bm25").metrics.model_dump(include=set(same)) == report.result("bm25").metrics.model_dump(include=set(same))


@ONE_LEG
def test_a_trained_generator_finds_the_images_of_its_training_captions(engine: EngineClient, evaluated: Evaluated) -> None:
    from ssi_plugin.indexing.documents import identifier_pairs

    index, folder = evaluated.report.index, Path(evaluated.report.models["ssi"]["folder"])
    ssi = open_generator_retriever(engine, index, folder, name="ssi", pairs=list(identifier_pairs(engine, index)))
    assert [ssi.retrieve(record.captions[0], 5)[0] for record in RECORDS] == [record.id for record in RECORDS]
