"""Fusion turns several ranked lists into one ranking a user can predict."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from ssi_plugin.generation.generator import Candidate, GenerationResult
from ssi_plugin.search import SSIQuery, fuse, linear_fusion, reciprocal_rank_fusion
from ssi_plugin.search.coverage import EXPLAINED_LISTS
from ssi_plugin.search.fusion import linear_shares
from ssi_plugin.search.plan import LIST_WEIGHTS, list_weights


def test_rrf_rewards_documents_found_by_several_lists() -> None:
    fused = reciprocal_rank_fusion({"exact": [("a", 9.0), ("b", 1.0)], "concepts": [("b", 5.0), ("c", 4.0)]})
    assert [doc for doc, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_rrf_ignores_score_scales_and_breaks_ties_by_id() -> None:
    fused = reciprocal_rank_fusion({"one": [("z", 1000.0)], "two": [("y", 0.001)]})
    assert [doc for doc, _ in fused] == ["y", "z"]


def test_linear_fusion_normalises_each_list_then_weights_it() -> None:
    fused = linear_fusion(
        {"exact": [("a", 10.0), ("b", 5.0)], "bm25": [("b", 2.0), ("c", 2.0)]}, {"exact": 1.0, "bm25": 0.4}
    )
    assert dict(fused) == pytest.approx({"a": 1.0, "b": 0.9, "c": 0.4})
    assert [doc for doc, _ in fused] == ["a", "b", "c"]


def test_ssi_clause_refuses_unknown_fields_and_blank_queries() -> None:
    assert SSIQuery(query="a dog").fusion == "linear"
    with pytest.raises(ValidationError, match="boost"):
        SSIQuery.model_validate({"query": "a dog", "boost": 2})
    with pytest.raises(ValidationError, match="blank"):
        SSIQuery(query="   ")
    with pytest.raises(ValidationError):
        SSIQuery(query="a dog", k=0)


def test_lists_scored_on_one_scale_are_not_divided_by_their_best() -> None:
    """A list's best hit that explains a quarter of the query counts a quarter of the list's weight, not all of it."""
    rankings = {"exact": [("a", 0.8), ("b", 0.2)], "terms": [("b", 0.25), ("c", 0.125)]}
    shares = linear_shares(rankings, {"exact": 1.0, "terms": 4.0}, absolute=["terms"])
    assert shares["b"] == pytest.approx({"exact": 0.25, "terms": 1.0})
    assert shares["c"] == pytest.approx({"terms": 0.5})
    assert linear_shares(rankings, {"exact": 1.0, "terms": 4.0})["b"]["terms"] == pytest.approx(4.0)  # by its best


def test_the_default_fusion_keeps_a_confident_exact_identifier_first() -> None:
    """A concept list that prefers another image must not outvote the generator's probabilities."""
    rankings = {"exact": [("b", 0.9), ("a", 0.1)], "concepts": [("a", 5.0), ("b", 4.8)]}
    default = SSIQuery(query="a dog").fusion
    assert fuse(rankings, default, weights=LIST_WEIGHTS)[0][0] == "b"
    assert fuse(rankings, "rrf", weights=LIST_WEIGHTS)[0][0] == "a"


def _generated(**log_probabilities: float) -> GenerationResult:
    candidates = [Candidate(identifier=identifier, score=score, image_ids=(identifier,))
                  for identifier, score in log_probabilities.items()]
    return GenerationResult(query="q", candidates=candidates, query_tokens=1)


def test_an_exact_hit_counts_as_much_as_its_identifiers_probability() -> None:
    """An unsure generator's first identifier no longer counts in full: the image the query's own words find wins."""
    unsure = _generated(seen=math.log(0.5), other=math.log(0.3), third=math.log(0.2))
    weights = list_weights(unsure, ["seen", "other"], dense=False)
    # The query's words: the new image explains 25 % of them, the one it was trained on 10 %.
    rankings = {"exact": [("seen", 0.5), ("other", 0.3)], "terms": [("new", 0.25), ("seen", 0.1)]}
    shares = linear_shares(rankings, weights, absolute=EXPLAINED_LISTS)
    assert shares["seen"]["exact"] == pytest.approx(0.5 * LIST_WEIGHTS["exact"])
    assert shares["other"]["exact"] == pytest.approx(0.3 * LIST_WEIGHTS["exact"])
    assert [doc for doc, _ in fuse(rankings, "linear", weights=weights, absolute=EXPLAINED_LISTS)][:2] == ["new", "seen"]
    before = fuse(rankings, "linear", weights=LIST_WEIGHTS, absolute=EXPLAINED_LISTS)
    assert [doc for doc, _ in before][:2] == ["seen", "new"]

    # The best identifier filtered out of the list: the others still count as their own probabilities.
    assert list_weights(unsure, ["other", None], dense=False)["exact"] == pytest.approx(0.3 * LIST_WEIGHTS["exact"])
    sure = _generated(seen=0.0, other=math.log(1e-4))
    assert list_weights(sure, ["seen"], dense=False)["exact"] == pytest.approx(LIST_WEIGHTS["exact"], rel=1e-3)
    assert {name: weight for name, weight in list_weights(unsure, [], dense=False).items() if name != "exact"} == {
        name: weight for name, weight in LIST_WEIGHTS.items() if name != "exact"}
    assert list_weights(unsure, ["seen"], dense=True) == LIST_WEIGHTS  # a dense leg's weight was chosen beside it in full
