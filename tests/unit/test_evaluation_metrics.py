"""Metrics on hand-computed cases, the protocol split, and the report files a user opens."""

from __future__ import annotations

import json
import math

import pytest

from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import ConfigError, InputError
from ssi_plugin.evaluation import (
    EvalReport,
    QueryOutcome,
    RetrieverResult,
    mean_reciprocal_rank,
    parse_generator_option,
    percentile,
    rank_of,
    recall_at,
    split_for_evaluation,
    summarize,
    write_report,
)
from ssi_plugin.evaluation.models import ModelVariant, default_variants, training_hash
from ssi_plugin.generation.examples import TrainingExample


def outcome(relevant: str, ranked: list[str], latency_ms: float = 1.0) -> QueryOutcome:
    return QueryOutcome(query=f"q-{relevant}", relevant=relevant, ranked=tuple(ranked), latency_ms=latency_ms)


def test_rank_is_one_based_and_none_when_missing() -> None:
    assert rank_of(["a", "b", "c"], "a") == 1
    assert rank_of(["a", "b", "c"], "c") == 3
    assert rank_of(["a", "b", "c"], "z") is None
    assert rank_of([], "a") is None


def test_recall_and_mrr_by_hand() -> None:
    # ranks 1, 3, 7, missing: R@1 = 1/4, R@5 = 2/4, R@10 = 3/4; MRR = (1 + 1/3 + 1/7 + 0) / 4
    ranks = [1, 3, 7, None]
    assert recall_at(ranks, 1) == 0.25
    assert recall_at(ranks, 5) == 0.5
    assert recall_at(ranks, 10) == 0.75
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert recall_at([], 1) == 0.0
    with pytest.raises(ValueError):
        recall_at(ranks, 0)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)  # 30 + 0.85 * 10
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))


def test_summarize_counts_a_duplicate_hit_once() -> None:
    outcomes = [
        outcome("a", ["a", "b"], 10),
        outcome("b", ["a", "c", "b", "b"], 20),  # rank 3
        outcome("c", ["x"], 30),
        outcome("d", ["y", "d"], 40),  # rank 2
    ]
    metrics = summarize(outcomes)
    assert metrics.queries == 4
    assert metrics.recall == {1: 0.25, 5: 0.75, 10: 0.75}
    assert metrics.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert metrics.latency_p50_ms == 25.0
    assert metrics.latency_p95_ms == pytest.approx(38.5)


def test_split_ingests_first_caption_and_queries_the_rest() -> None:
    records = [
        ImageRecord(id="a", captions=("first a", "second a", "  ", "third a")),
        ImageRecord(id="b", captions=("only b",)),
        ImageRecord(id="c", captions=()),
        ImageRecord(id="d", captions=("first d", "second d")),
    ]
    split = split_for_evaluation(records)
    assert [(d.id, d.captions) for d in split.documents] == [("a", ("first a",)), ("b", ("only b",)), ("d", ("first d",))]
    assert [(q.text, q.relevant) for q in split.queries] == [("second a", "a"), ("second d", "d"), ("third a", "a")]
    assert split.skipped == ("c",)
    assert [q.relevant for q in split_for_evaluation(records, max_queries=2).queries] == ["a", "d"]
    changed = split_for_evaluation([ImageRecord(id="a", captions=("other first", "second a")), *records[1:]])
    assert changed.fingerprint() != split.fingerprint()
    assert split_for_evaluation(records).fingerprint() == split.fingerprint()


def test_unseen_images_are_a_seeded_share_of_those_asked_about() -> None:
    records = [ImageRecord(id=f"img-{n:02d}", captions=(f"first {n}", f"second {n}")) for n in range(20)]
    records.append(ImageRecord(id="silent", captions=("only one caption",)))
    split = split_for_evaluation(records, unseen=0.3, seed=4)
    assert len(split.unseen) == 6 and "silent" not in split.unseen  # an image without a query teaches nothing held back
    assert {d.id for d in split.unseen_documents} == split.unseen
    assert len(split.seen_documents) == 15 and not {d.id for d in split.seen_documents} & split.unseen
    assert split_for_evaluation(list(reversed(records)), unseen=0.3, seed=4).unseen == split.unseen  # dataset order is no input
    assert split_for_evaluation(records, unseen=0.3, seed=5).unseen != split.unseen
    assert split.fingerprint() != split_for_evaluation(records).fingerprint() != split_for_evaluation(records, unseen=0.3, seed=5)
    assert split_for_evaluation(records).unseen == frozenset()
    assert len(split_for_evaluation(records[:2], unseen=0.01).unseen) == 1  # at least one, and one left to train on
    with pytest.raises(InputError, match="unseen fraction"):
        split_for_evaluation(records, unseen=1.0)


def test_split_refuses_a_dataset_without_queries() -> None:
    with pytest.raises(InputError, match="second caption"):
        split_for_evaluation([ImageRecord(id="a", captions=("one",))])
    with pytest.raises(InputError, match="no image with a caption"):
        split_for_evaluation([ImageRecord(id="a")])


def test_trained_variants_are_keyed_by_config_and_examples() -> None:
    ssi, no_rgs, numeric, hybrid = default_variants(epochs=3)
    assert (ssi.training.rationale_weight > 0, no_rgs.training.rationale_weight, numeric.training.identifier_kind) == (True, 0.0, "numeric")
    # ssi+dense searches the ssi model with a dense leg: the same training, the same model folder
    assert (hybrid.training, hybrid.trained_as, hybrid.search) == (ssi.training, ssi.name, {"hybrid": True})
    examples = [TrainingExample(text="a dog", identifier="objects: dog", image_id="1")]
    assert training_hash(ssi.training, examples) != training_hash(no_rgs.training, examples)
    assert training_hash(ssi.training, examples) != training_hash(ssi.training, [*examples, examples[0]])
    assert training_hash(ssi.training, examples) == training_hash(ssi.training, list(examples))
    with pytest.raises(ValueError):
        ModelVariant(name="neither")


def test_several_seeds_train_each_variant_once_per_seed() -> None:
    variants = default_variants(epochs=3, seeds=2)
    assert [(v.name, v.family, v.training.seed) for v in variants] == [
        ("ssi-seed0", "ssi", 0), ("ssi-seed1", "ssi", 1), ("ssi-no-rgs-seed0", "ssi-no-rgs", 0),
        ("ssi-no-rgs-seed1", "ssi-no-rgs", 1), ("numeric-ids-seed0", "numeric-ids", 0), ("numeric-ids-seed1", "numeric-ids", 1),
        ("ssi+dense-seed0", "ssi+dense", 0), ("ssi+dense-seed1", "ssi+dense", 1)]
    assert variants[1].training.rationale_weight > 0 and variants[3].training.rationale_weight == 0
    assert [v.trained_as for v in variants[-2:]] == ["ssi-seed0", "ssi-seed1"]
    assert [v.name for v in default_variants(seeds=1)] == ["ssi", "ssi-no-rgs", "numeric-ids", "ssi+dense"]


def test_generator_option_names_a_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="NAME=FOLDER"):
        parse_generator_option("just-a-name")
    with pytest.raises(ConfigError, match="not a generator folder"):
        parse_generator_option(f"mine={tmp_path}")
    (tmp_path / "generator.json").write_text("{}")
    assert parse_generator_option(f"mine={tmp_path}").folder == tmp_path


def _report() -> EvalReport:
    bm25 = [outcome("a", ["a"], 4.0), outcome("b", ["a", "b"], 6.0)]
    ssi = [outcome("a", ["a"], 40.0), outcome("b", ["b"], 60.0)]
    return EvalReport(
        dataset="demo/dataset.jsonl", index="ssi-eval-x", engine="opensearch 2.19.1", images=2, queries=2, k=10,
        results=[RetrieverResult(name="bm25", description="BM25", metrics=summarize(bm25), outcomes=bm25),
                 RetrieverResult(name="ssi", metrics=summarize(ssi), outcomes=ssi)],
    )


def test_report_files_hold_the_numbers(tmp_path) -> None:
    report = _report()
    files = write_report(report, tmp_path / "out" / "eval.json")
    assert files.markdown == tmp_path / "out" / "eval.md" and files.plot == tmp_path / "out" / "eval.png"

    data = json.loads(files.json_path.read_text())
    assert {r["name"]: r["metrics"]["recall"]["1"] for r in data["results"]} == {"bm25": 0.5, "ssi": 1.0}
    assert EvalReport.model_validate(data).result("bm25").metrics.mrr == pytest.approx(0.75)

    table = files.markdown.read_text()
    assert "| Retriever | R@1 | R@5 | R@10 | MRR | p50 ms | p95 ms |" in table
    assert "| bm25 | 50.0 | 100.0 | 100.0 | 75.0 | 5.0 | 5.9 |" in table
    assert "| ssi | 100.0 | 100.0 | 100.0 | 100.0 | 50.0 | 59.0 |" in table

    png = files.plot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000


def test_report_paths_can_be_chosen(tmp_path) -> None:
    files = write_report(_report(), tmp_path / "r.json", markdown=tmp_path / "t.md", plot=tmp_path / "p.png")
    assert all(path.is_file() for path in (files.json_path, tmp_path / "t.md", tmp_path / "p.png"))


def test_the_report_gives_the_mean_over_seeds(tmp_path) -> None:
    seed0 = [outcome("a", ["a"]), outcome("b", ["a", "b"])]
    seed1 = [outcome("a", ["a"]), outcome("b", ["b"])]
    report = _report().model_copy(update={"results": [
        _report().results[0],
        RetrieverResult(name="ssi-seed0", family="ssi", description="SSI", metrics=summarize(seed0), outcomes=seed0),
        RetrieverResult(name="ssi-seed1", family="ssi", description="SSI", metrics=summarize(seed1), outcomes=seed1),
    ]})
    (mean,) = report.seed_means
    assert (mean.family, mean.seeds, mean.recall[1], mean.mrr) == ("ssi", 2, 0.75, pytest.approx(0.875))
    assert (mean.recall_at_1_min, mean.recall_at_1_max) == (0.5, 1.0)
    assert _report().seed_means == []

    files = write_report(report, tmp_path / "eval.json")
    assert json.loads(files.json_path.read_text())["seed_means"][0]["recall"]["1"] == 0.75
    table = files.markdown.read_text()
    assert "| ssi | 2 | 75.0 | 100.0 | 100.0 | 87.5 | 50.0-100.0 |" in table
    assert "- **ssi-seed0, ssi-seed1**: SSI\n" in table and "- **bm25**: BM25\n" in table


def test_the_report_gives_seen_and_unseen_images_apart(tmp_path) -> None:
    from ssi_plugin.evaluation.run import split_metrics

    seed0 = [outcome("a", ["a"]), outcome("b", ["a", "b"]), outcome("c", ["x", "y"])]
    seed1 = [outcome("a", ["a"]), outcome("b", ["b"]), outcome("c", ["c"])]
    unseen = frozenset({"c"})
    assert split_metrics(seed0, frozenset()) == {"seen": None, "unseen": None}
    blocks = split_metrics(seed0, unseen)
    assert (blocks["seen"].queries, blocks["seen"].recall[1], blocks["unseen"].queries, blocks["unseen"].recall[10]) == (2, 0.5, 1, 0.0)
    report = _report().model_copy(update={"unseen_images": ["c"], "images": 3, "results": [
        RetrieverResult(name=f"ssi-seed{n}", family="ssi", metrics=summarize(o), outcomes=o, **split_metrics(o, unseen))
        for n, o in enumerate((seed0, seed1))
    ]})
    (mean,) = report.seed_means
    assert (mean.seen.recall[1], mean.unseen.recall[1], mean.unseen.mrr) == (0.75, 0.5, 0.5)

    files = write_report(report, tmp_path / "eval.json")
    data = json.loads(files.json_path.read_text())
    assert data["unseen_images"] == ["c"]
    assert data["results"][0]["unseen"]["recall"]["1"] == 0.0 and data["results"][1]["seen"]["recall"]["1"] == 1.0
    table = files.markdown.read_text()
    assert "Seen images (2, 2 queries) were trained on; unseen images (1, 1 queries)" in table
    assert "| Retriever | seen R@1 | seen R@5 | seen R@10 | seen MRR | unseen R@1 | unseen R@5 | unseen R@10 | unseen MRR |" in table
    assert "| ssi-seed0 | 50.0 | 100.0 | 100.0 | 75.0 | 0.0 | 0.0 | 0.0 | 0.0 |" in table
    assert "| ssi (mean of 2) | 75.0 | 100.0 | 100.0 | 87.5 | 50.0 | 50.0 | 50.0 | 50.0 |" in table
    assert files.plot.read_bytes().startswith(b"\x89PNG")
    assert "unseen R@1" not in write_report(_report(), tmp_path / "plain.json").markdown.read_text()
