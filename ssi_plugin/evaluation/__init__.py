"""Evaluation: the protocol, the retrievers compared, their metrics and the report.

    evaluate(engine, records, annotator, EvalOptions(...), dataset=...) -> EvalReport
    write_report(report, "eval.json") -> ReportFiles           JSON + markdown table + PNG
    compare_retrievers(results) -> list[PairedComparison]      paired sign-flip tests: which differences hold at p < 0.05
    summarize(outcomes) -> RetrievalMetrics                    Recall@1/5/10, MRR, latency p50/p95
    Retriever: .name, .retrieve(query, k) -> list[str]         BM25Retriever, DenseRetriever, SSIRetriever, GenerativeRetriever

Importing this package loads no torch and no engine client.
"""

from ssi_plugin.evaluation.metrics import (
    RECALL_CUTOFFS,
    QueryOutcome,
    RetrievalMetrics,
    mean_reciprocal_rank,
    percentile,
    rank_of,
    recall_at,
    summarize,
)
from ssi_plugin.evaluation.models import (
    HYBRID_FAMILY,
    ModelVariant,
    default_variants,
    parse_generator_option,
)
from ssi_plugin.evaluation.protocol import EvalQuery, EvalSplit, split_for_evaluation
from ssi_plugin.evaluation.report import (
    EvalReport,
    ReportFiles,
    RetrieverResult,
    compare_retrievers,
    markdown_table,
    plot_report,
    write_report,
)
from ssi_plugin.evaluation.retrievers import (
    BM25Retriever,
    GenerativeRetriever,
    Retriever,
    SSIRetriever,
)
from ssi_plugin.evaluation.run import BASELINES, EvalOptions, evaluate, run_queries
from ssi_plugin.evaluation.significance import PairedComparison, sign_flip_p_values

__all__ = [
    "BASELINES",
    "HYBRID_FAMILY",
    "RECALL_CUTOFFS",
    "BM25Retriever",
    "EvalOptions",
    "EvalQuery",
    "EvalReport",
    "EvalSplit",
    "GenerativeRetriever",
    "ModelVariant",
    "PairedComparison",
    "QueryOutcome",
    "ReportFiles",
    "RetrievalMetrics",
    "Retriever",
    "RetrieverResult",
    "SSIRetriever",
    "compare_retrievers",
    "default_variants",
    "evaluate",
    "markdown_table",
    "mean_reciprocal_rank",
    "parse_generator_option",
    "percentile",
    "plot_report",
    "rank_of",
    "recall_at",
    "run_queries",
    "sign_flip_p_values",
    "split_for_evaluation",
    "summarize",
    "write_report",
]
