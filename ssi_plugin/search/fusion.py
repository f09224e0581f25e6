"""Fusing ranked lists: a weighted sum of normalised scores (default) or reciprocal-rank fusion.

The exact-identifier list is scored by the generator's probabilities; rank
fusion throws them away and lets a partial concept match outrank a confident
exact identifier (measured: the linear sum ranked the right image first as
often as the generator alone, reciprocal-rank fusion up to 1.2 points less).

Pure functions over (document id, score) lists, best first, so they are tested
without an engine and reused by evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ssi_plugin.search.options import Fusion

RRF_K = 60
"""The usual reciprocal-rank constant: ranks far down a list still count, but little."""

Ranking = Sequence[tuple[str, float]]


def reciprocal_rank_fusion(rankings: Mapping[str, Ranking], *, k: int = RRF_K) -> list[tuple[str, float]]:
    fused: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return _sorted(fused)


def linear_fusion(rankings: Mapping[str, Ranking], weights: Mapping[str, float]) -> list[tuple[str, float]]:
    """Sum of ``weight × score / best score of its list``: scores of different lists become comparable."""
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        best = max((score for _, score in ranking), default=0.0)
        if best <= 0:
            continue
        for doc_id, score in ranking:
            fused[doc_id] = fused.get(doc_id, 0.0) + weights.get(name, 1.0) * score / best
    return _sorted(fused)


def fuse(rankings: Mapping[str, Ranking], method: Fusion, *, weights: Mapping[str, float]) -> list[tuple[str, float]]:
    return reciprocal_rank_fusion(rankings) if method == "rrf" else linear_fusion(rankings, weights)


def _sorted(scores: dict[str, float]) -> list[tuple[str, float]]:
    # Ties break on the id so that a ranking is reproducible.
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))
