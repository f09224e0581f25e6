"""Retrieval metrics of one retriever over a query set: Recall@K, MRR, latency percentiles.

Pure functions over per-query outcomes (the ranked image ids a retriever
answered, the one image that is relevant, the time it took), so they are
checked by hand-computed cases and reused by every retriever alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

RECALL_CUTOFFS: tuple[int, ...] = (1, 5, 10)
"""The K of Recall@K every report shows (the field's usual 1/5/10)."""


class QueryOutcome(BaseModel):
    """What one retriever answered to one query."""

    model_config = ConfigDict(frozen=True)

    query: str
    relevant: str = Field(description="The id of the image the query was written for.")
    ranked: tuple[str, ...] = Field(description="Image ids the retriever answered, best first.")
    latency_ms: float = Field(ge=0)

    @property
    def rank(self) -> int | None:
        """1-based rank of the relevant image, or None when it was not retrieved."""
        return rank_of(self.ranked, self.relevant)


class RetrievalMetrics(BaseModel):
    """Aggregate figures of one retriever; recall and MRR are fractions in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    queries: int
    recall: dict[int, float] = Field(description="Recall@K by K.")
    mrr: float = Field(description="Mean reciprocal rank; a query whose image is not ranked counts 0.")
    latency_p50_ms: float
    latency_p95_ms: float


def rank_of(ranked: Sequence[str], relevant: str) -> int | None:
    """1-based position of ``relevant`` in ``ranked`` (its first occurrence), or None."""
    for position, image_id in enumerate(ranked, start=1):
        if image_id == relevant:
            return position
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """Share of queries whose image is within the top ``k``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not ranks:
        return 0.0
    return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    """Mean of 1/rank over queries, 0 for an image not retrieved."""
    if not ranks:
        return 0.0
    return sum(1.0 / rank for rank in ranks if rank is not None) / len(ranks)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(outcomes: Sequence[QueryOutcome], *, cutoffs: Sequence[int] = RECALL_CUTOFFS) -> RetrievalMetrics:
    """Recall@K for each cutoff, MRR and latency p50/p95 of a retriever's outcomes."""
    ranks = [outcome.rank for outcome in outcomes]
    latencies = [outcome.latency_ms for outcome in outcomes]
    return RetrievalMetrics(
        queries=len(outcomes),
        recall={k: recall_at(ranks, k) for k in cutoffs},
        mrr=mean_reciprocal_rank(ranks),
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
    )
