"""Paired significance between retrievers: p-values checked against the sign test, and the marks a reader sees."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ssi_plugin.evaluation import (
    EvalReport,
    QueryOutcome,
    RetrieverResult,
    compare_retrievers,
    sign_flip_p_values,
    summarize,
    write_report,
)
from ssi_plugin.evaluation.significance import compare, pairs_to_compare

IMAGES = [f"img{n}" for n in range(40)]


def answers(ranks: list[int | None]) -> list[QueryOutcome]:
    """One outcome per image of IMAGES, the relevant image at the given rank (None: not retrieved)."""
    outcomes = []
    for image, rank in zip(IMAGES, ranks, strict=False):
        others = [other for other in IMAGES if other != image][:9]
        ranked = others if rank is None else [*others[: rank - 1], image, *others[rank - 1 :]]
        outcomes.append(QueryOutcome(query=f"a photo of {image}", relevant=image, ranked=tuple(ranked), latency_ms=1.0))
    return outcomes


def result(name: str, ranks: list[int | None], family: str | None = None) -> RetrieverResult:
    outcomes = answers(ranks)
    return RetrieverResult(name=name, family=family, metrics=summarize(outcomes), outcomes=outcomes)


MIXED = [1, 2, None, 1, 5, 1, 3, None, 1, 1] * 4


def test_identical_retrievers_differ_by_nothing_and_are_not_marked() -> None:
    comparison = compare("dense-engine", [answers(MIXED)], "dense-minilm", [answers(MIXED)])
    assert comparison.queries == 40
    for metric in (comparison.recall_at_1, comparison.mrr):
        assert (metric.difference, metric.p_value, metric.significant) == (0.0, 1.0, False)


def test_a_retriever_that_wins_on_every_query_is_marked_either_way_round() -> None:
    better, worse = [answers([1] * 40)], [answers([2] * 40)]
    ahead = compare("ssi", better, "bm25", worse)
    assert ahead.recall_at_1.difference == 1.0 and ahead.mrr.difference == pytest.approx(0.5)
    assert ahead.recall_at_1.p_value < 0.05 and ahead.recall_at_1.significant and ahead.mrr.significant
    behind = compare("bm25", worse, "ssi", better)
    assert behind.recall_at_1.difference == -1.0 and behind.recall_at_1.significant  # two-sided


def sign_test(wins: int, losses: int) -> float:
    """Two-sided p-value of the sign test: the chance that fair coins for the differing queries split as unevenly."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(n + 1) if abs(2 * k - n) >= abs(wins - losses)) / 2**n


def test_p_values_are_those_of_the_sign_test() -> None:
    # wins and losses of one hit each: the paired sign-flip test is the two-sided sign (binomial) test
    exact = np.array([1.0] * 9 + [-1.0] + [0.0] * 30)[:, None]  # 10 queries differ: all 1,024 flips are counted
    assert sign_flip_p_values(exact)[0] == pytest.approx(sign_test(9, 1))
    sampled = np.array([1.0] * 20 + [-1.0] * 10 + [0.0] * 10)[:, None]  # 30 differ: 10,000 random flips
    assert sign_flip_p_values(sampled)[0] == pytest.approx(sign_test(20, 10), abs=0.01)


def test_the_same_report_gives_the_same_p_values() -> None:
    rng = np.random.default_rng(7)
    differences = rng.normal(0.1, 1.0, size=(200, 2))
    first, again = sign_flip_p_values(differences), sign_flip_p_values(differences)
    assert 0.01 < first[0] < 0.9 and np.array_equal(first, again)


def test_a_seed_family_enters_with_its_per_query_mean() -> None:
    results = [result("bm25", [2] * 40),
               result("ssi-seed0", [1] * 40, family="ssi"),
               result("ssi-seed1", [1] * 20 + [2] * 20, family="ssi")]
    (comparison,) = compare_retrievers(results)
    assert (comparison.a, comparison.b, comparison.queries) == ("ssi", "bm25", 40)
    assert comparison.recall_at_1.difference == pytest.approx(0.75)  # seed0 +1 on every query, seed1 +1 on half
    assert comparison.recall_at_1.significant


def test_only_the_comparisons_that_matter_and_are_present_are_made() -> None:
    units = ["bm25", "dense-minilm", "ssi", "ssi-no-rgs", "ssi+dense"]
    assert pairs_to_compare(units) == [
        ("bm25", "dense-minilm"),
        ("ssi", "dense-minilm"), ("ssi", "bm25"),
        ("ssi-no-rgs", "dense-minilm"), ("ssi-no-rgs", "bm25"),
        ("ssi+dense", "dense-minilm"), ("ssi+dense", "bm25"),
        ("ssi", "ssi-no-rgs"), ("ssi+dense", "ssi"),
    ]
    assert pairs_to_compare(["ssi", "numeric-ids"]) == [("ssi", "numeric-ids")]
    assert pairs_to_compare(["ssi", "mine"]) == []


def test_retrievers_that_answered_other_queries_are_not_paired() -> None:
    with pytest.raises(ValueError, match="same ones"):
        compare("ssi", [answers([1] * 40)], "bm25", [answers([1] * 30)])


def test_the_table_marks_the_differences_that_hold(tmp_path) -> None:
    results = [result("bm25", [2] * 40), result("dense-minilm", MIXED), result("dense-engine", MIXED), result("ssi", [1] * 40)]
    report = EvalReport(dataset="demo", index="ssi-eval-x", engine="opensearch 2.19.1", images=40, queries=40, k=10,
                        results=results, comparisons=compare_retrievers(results))
    files = write_report(report, tmp_path / "eval.json")

    table = files.markdown.read_text()
    assert "Paired differences on the same 40 queries" in table and "p < 0.05" in table
    assert "| A vs B | ΔR@1 | p | ΔMRR | p |" in table
    assert "| dense-engine vs dense-minilm | +0.0 | 1.000 – | +0.0 | 1.000 – |" in table
    assert "| ssi vs bm25 | +100.0 | <0.001 ✓ | +50.0 | <0.001 ✓ |" in table

    data = json.loads(files.json_path.read_text())
    rows = {(row["a"], row["b"]): row for row in data["comparisons"]}
    assert rows["ssi", "bm25"]["recall_at_1"]["significant"] is True
    assert rows["dense-engine", "dense-minilm"]["mrr"] == {"difference": 0.0, "p_value": 1.0, "significant": False}
    assert EvalReport.model_validate(data).comparisons == report.comparisons
