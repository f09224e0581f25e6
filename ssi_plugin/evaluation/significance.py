"""Whether one retriever beats another beyond chance: a paired sign-flip test over the queries.

Both retrievers answer the same queries, so the test pairs them query by
query: under the null hypothesis that A and B are interchangeable, each
query's difference (A's reciprocal rank minus B's, or A's hit@1 minus B's) is
as likely to carry either sign. The p-value is the share of sign flips whose
mean difference is at least as far from zero as the observed one (two-sided).

Why our own numpy and not a library: ``scipy.stats.permutation_test`` with
``permutation_type="samples"`` runs the same test but took about ten times as
long (2 s a pair on 1,200 queries, 7 s on 4,000; a report holds a dozen
pairs), and ranx's paired tests would add a dependency (with numba) for a few
lines. Here the flips are packed random bits applied with one matrix product,
both metrics at once. Ties (queries where both retrievers score the same)
cannot change any flipped mean and are left out; when the flips left are few
they are all enumerated, so the p-value is exact.

Seeds: a family trained once per seed (``eval --seeds N``) enters a test with
each query's outcome averaged over its seeds; the signs are still flipped
query by query. The claim tested is then "over queries like these, this
family's trained models rank better on average"; the spread between seeds is
the seed table's R@1 min-max. Testing the N per-seed means instead would
have no power: with 3 seeds the smallest two-sided p a sign-flip test can
give is 2/8.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.evaluation.metrics import QueryOutcome
from ssi_plugin.evaluation.models import HYBRID_FAMILY

ROUNDS = 10_000
"""Random sign flips per test; the smallest p-value it can give is 1 / 10,001."""

ALPHA = 0.05
"""A difference with a p-value below this is marked as holding."""

SEED = 0
"""Every test draws its flips from this seed: a report gives the same p-values on each run."""

REFERENCES = ("dense-minilm", "bm25")
"""Every retriever is compared with the strongest baseline and with the engine's own keyword search."""

CLAIMS = (("ssi", "ssi-no-rgs"), (HYBRID_FAMILY, "dense-minilm"), (HYBRID_FAMILY, "ssi"), ("ssi", "numeric-ids"))
"""The comparisons behind the project's claims: RGS helps, fusion adds to dense, SSI beats numeric ids."""

_TOLERANCE = 1e-9
"""Flipped sums this close to the observed one count as reaching it (floating-point sums of the same values)."""


class MetricDifference(BaseModel):
    """A minus B on one metric (a fraction in [-1, 1]) and the test's two-sided p-value."""

    model_config = ConfigDict(frozen=True)

    difference: float
    p_value: float = Field(ge=0, le=1)
    significant: bool = Field(description=f"p < {ALPHA}.")


class PairedComparison(BaseModel):
    """Retriever (or seed family) A against B on the same queries."""

    model_config = ConfigDict(frozen=True)

    a: str
    b: str
    queries: int
    recall_at_1: MetricDifference
    mrr: MetricDifference


def sign_flip_p_values(differences: np.ndarray, *, rounds: int = ROUNDS, seed: int = SEED) -> np.ndarray:
    """Two-sided p-value of each column of ``differences`` (queries x metrics), the same flips for every column."""
    differences = np.asarray(differences, dtype=np.float64)
    differences = differences[np.any(differences != 0, axis=1)]
    discordant = len(differences)
    total = differences.sum(axis=0)  # flipping a set of queries' signs subtracts twice their sum from this
    observed = np.abs(total) - _TOLERANCE
    if 2**discordant <= rounds:  # every assignment of signs: the exact p-value
        every = (np.arange(2**discordant)[:, None] >> np.arange(discordant)) & 1
        return (np.abs(total - 2 * (every @ differences)) >= observed).mean(axis=0)
    rng = np.random.default_rng(seed)
    reached = np.zeros(differences.shape[1])
    for start in range(0, rounds, 1000):  # batches of 1,000 flips: memory stays near 8 kB a query
        packed = rng.integers(0, 256, size=(min(1000, rounds - start), (discordant + 7) // 8), dtype=np.uint8)
        flips = np.unpackbits(packed, axis=1, count=discordant)
        reached += (np.abs(total - 2 * (flips @ differences)) >= observed).sum(axis=0)
    return (reached + 1) / (rounds + 1)  # the observed signs count as one draw: a p-value is never 0


def compare(a: str, a_outcomes: Sequence[Sequence[QueryOutcome]], b: str, b_outcomes: Sequence[Sequence[QueryOutcome]],
            *, rounds: int = ROUNDS, seed: int = SEED) -> PairedComparison:
    """A against B, each given as the outcomes of its seeds (one list per seed, the queries in the same order)."""
    if _queries(a_outcomes[0]) != _queries(b_outcomes[0]):
        raise ValueError(f"{a} and {b} answered different queries: a paired test needs the same ones, in the same order")
    scores_a, scores_b = _per_query_scores(a_outcomes), _per_query_scores(b_outcomes)
    differences = scores_a - scores_b
    p_values = sign_flip_p_values(differences, rounds=rounds, seed=seed)
    hit, reciprocal = (MetricDifference(difference=float(differences[:, column].mean()), p_value=float(p_values[column]),
                                        significant=bool(p_values[column] < ALPHA)) for column in (0, 1))
    return PairedComparison(a=a, b=b, queries=len(differences), recall_at_1=hit, mrr=reciprocal)


def _per_query_scores(seeds: Sequence[Sequence[QueryOutcome]]) -> np.ndarray:
    """Hit@1 and reciprocal rank of each query (queries x 2), each the mean over the seeds."""
    if any(_queries(outcomes) != _queries(seeds[0]) for outcomes in seeds[1:]):
        raise ValueError("the seeds of a family answered different queries")
    ranks = np.array([[o.rank or 0 for o in outcomes] for outcomes in seeds], dtype=np.float64)
    reciprocal = np.divide(1.0, ranks, out=np.zeros_like(ranks), where=ranks > 0)
    return np.stack([(ranks == 1).mean(axis=0), reciprocal.mean(axis=0)], axis=1)


def _queries(outcomes: Sequence[QueryOutcome]) -> list[tuple[str, str]]:
    return [(o.query, o.relevant) for o in outcomes]


def pairs_to_compare(units: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons among ``units`` (retriever or family names) that a report shows, each pair once, A first."""
    wanted = [*((unit, reference) for unit in units for reference in REFERENCES), *CLAIMS]
    pairs: list[tuple[str, str]] = []
    for a, b in wanted:
        if a != b and a in units and b in units and (a, b) not in pairs and (b, a) not in pairs:
            pairs.append((a, b))
    return pairs


def paired_comparisons(units: Mapping[str, Sequence[Sequence[QueryOutcome]]], *, rounds: int = ROUNDS,
                       seed: int = SEED) -> list[PairedComparison]:
    """The comparisons a report shows, among ``units`` (name -> the outcomes of each of its seeds) that hold outcomes."""
    answered = [name for name, seeds in units.items() if seeds and all(seeds)]
    return [compare(a, units[a], b, units[b], rounds=rounds, seed=seed) for a, b in pairs_to_compare(answered)]
