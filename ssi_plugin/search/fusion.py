"""Fusing ranked lists: a weighted sum of normalised scores (default) or reciprocal-rank fusion.

The exact-identifier list is scored by the generator's probabilities; rank
fusion throws them away and lets a partial concept match outrank a confident
exact identifier (measured: the linear sum ranked the right image first as
often as the generator alone, reciprocal-rank fusion up to 1.2 points less).

Pure functions over (document id, score) lists, best first, so they are tested
without an engine and reused by evaluation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ssi_plugin.search.options import Fusion

RRF_K = 60
"""The usual reciprocal-rank constant: ranks far down a list still count, but little."""

Ranking = Sequence[tuple[str, float]]


Shares = dict[str, dict[str, float]]
"""Each document's share of its fused score, by list: what ``explain`` shows."""


def reciprocal_rank_shares(rankings: Mapping[str, Ranking], *, k: int = RRF_K) -> Shares:
    shares: Shares = {}
    for name, ranking in rankings.items():
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            shares.setdefault(doc_id, {})[name] = 1.0 / (k + rank)
    return shares


def linear_shares(rankings: Mapping[str, Ranking], weights: Mapping[str, float], *, absolute: Collection[str] = ()) -> Shares:
    """``weight × score / best score of its list``: scores of different lists become comparable. The lists named in
    ``absolute`` are on one scale for every query already (``weight × score``)."""
    shares: Shares = {}
    for name, ranking in rankings.items():
        best = 1.0 if name in absolute else max((score for _, score in ranking), default=0.0)
        if best <= 0:
            continue
        for doc_id, score in ranking:
            shares.setdefault(doc_id, {})[name] = weights.get(name, 1.0) * score / best
    return shares


def fused_shares(rankings: Mapping[str, Ranking], method: Fusion, *, weights: Mapping[str, float],
                 absolute: Collection[str] = ()) -> Shares:
    return reciprocal_rank_shares(rankings) if method == "rrf" else linear_shares(rankings, weights, absolute=absolute)


def ranked(shares: Shares) -> list[tuple[str, float]]:
    """Documents by the sum of their shares, best first; ties break on the id so that a ranking is reproducible."""
    return sorted(((doc_id, sum(by_list.values())) for doc_id, by_list in shares.items()), key=lambda item: (-item[1], item[0]))


def reciprocal_rank_fusion(rankings: Mapping[str, Ranking], *, k: int = RRF_K) -> list[tuple[str, float]]:
    return ranked(reciprocal_rank_shares(rankings, k=k))


def linear_fusion(rankings: Mapping[str, Ranking], weights: Mapping[str, float]) -> list[tuple[str, float]]:
    return ranked(linear_shares(rankings, weights))


def fuse(rankings: Mapping[str, Ranking], method: Fusion, *, weights: Mapping[str, float],
         absolute: Collection[str] = ()) -> list[tuple[str, float]]:
    return ranked(fused_shares(rankings, method, weights=weights, absolute=absolute))
