"""An evaluation's result and its three renderings: JSON (machines), a markdown table (people), a PNG plot.

The JSON holds every figure and the per-query rankings, so a table or plot can
be redrawn, and a surprising number traced to the queries behind it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ssi_plugin import __version__
from ssi_plugin.evaluation.metrics import QueryOutcome, RetrievalMetrics
from ssi_plugin.evaluation.significance import ALPHA, ROUNDS, PairedComparison, paired_comparisons


class RetrieverResult(BaseModel):
    name: str
    family: str | None = Field(default=None, description="The variant family of a generator trained once per seed.")
    description: str = ""
    metrics: RetrievalMetrics
    seen: RetrievalMetrics | None = Field(default=None, description="Queries of images trained on (with unseen images only).")
    unseen: RetrievalMetrics | None = Field(default=None, description="Queries of images ingested after training.")
    outcomes: list[QueryOutcome] = Field(default_factory=list)


class MeanFigures(BaseModel):
    """Recall@K and MRR averaged over the members of a family."""

    recall: dict[int, float]
    mrr: float

    @classmethod
    def of(cls, members: list[RetrievalMetrics]) -> MeanFigures:
        return cls(recall={k: fmean(m.recall[k] for m in members) for k in members[0].recall}, mrr=fmean(m.mrr for m in members))


class SeedMean(BaseModel):
    """One generator family trained with several seeds: its mean figures, and the spread of Recall@1."""

    family: str
    seeds: int
    recall: dict[int, float]
    mrr: float
    recall_at_1_min: float
    recall_at_1_max: float
    seen: MeanFigures | None = None
    unseen: MeanFigures | None = None


class EvalReport(BaseModel):
    """Figures of every retriever on one dataset under one protocol."""

    dataset: str
    index: str
    engine: str
    images: int
    queries: int
    skipped_images: list[str] = Field(default_factory=list)
    unseen_images: list[str] = Field(default_factory=list, description="Images ingested after training (never trained on).")
    k: int
    protocol: str = "first caption ingested as metadata; other captions are queries; correct when the own image is ranked"
    models: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Generator folders used, by retriever "
                                               "name, and the precision each was loaded in (int8 or float32).")
    results: list[RetrieverResult]
    comparisons: list[PairedComparison] = Field(default_factory=list, description="Paired tests between retrievers "
                                                "(see `compare_retrievers`); empty when none was run.")
    significance: str = (f"two-sided paired sign-flip test over queries ({ROUNDS:,} seeded rounds, exact when few queries "
                         f"differ); a seed family's per-query outcome is its mean over seeds; significant: p < {ALPHA}")
    created: datetime = Field(default_factory=lambda: datetime.now().astimezone())
    ssi_plugin_version: str = __version__

    @computed_field  # type: ignore[prop-decorator]
    @property
    def seed_means(self) -> list[SeedMean]:
        """Means over the members of each family with more than one (``eval --seeds N``)."""
        families: dict[str, list[RetrieverResult]] = {}
        for result in self.results:
            if result.family is not None:
                families.setdefault(result.family, []).append(result)
        means = []
        for family, members in families.items():
            if len(members) < 2:
                continue
            overall = MeanFigures.of([m.metrics for m in members])
            parts = {part: [block for m in members if (block := getattr(m, part)) is not None] for part in ("seen", "unseen")}
            means.append(SeedMean(
                family=family, seeds=len(members), recall=overall.recall, mrr=overall.mrr,
                recall_at_1_min=min(m.metrics.recall[1] for m in members), recall_at_1_max=max(m.metrics.recall[1] for m in members),
                **{part: MeanFigures.of(blocks) if len(blocks) == len(members) else None for part, blocks in parts.items()},
            ))
        return means

    def result(self, name: str) -> RetrieverResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)


def compare_retrievers(results: list[RetrieverResult]) -> list[PairedComparison]:
    """Paired tests between the report's retrievers, a family of seeds counting as one (by its family name)."""
    units: dict[str, list[list[QueryOutcome]]] = {}
    for result in results:
        units.setdefault(result.family or result.name, []).append(result.outcomes)
    return paired_comparisons(units)


class ReportFiles(BaseModel):
    json_path: Path
    markdown: Path
    plot: Path


def markdown_table(report: EvalReport) -> str:
    """Recall and MRR in percent with one decimal (as papers print them), latencies in milliseconds."""
    cutoffs = sorted(report.results[0].metrics.recall) if report.results else []
    header = ["Retriever", *(f"R@{k}" for k in cutoffs), "MRR", "p50 ms", "p95 ms"]
    lines = [
        f"Evaluation of `{report.dataset}`: {report.images} images, {report.queries} queries, index `{report.index}` on {report.engine}.",
        "",
        _row(header),
        _separator(len(header)),
    ]
    for result in report.results:
        m = result.metrics
        cells = [result.name, *(f"{100 * m.recall[k]:.1f}" for k in cutoffs), f"{100 * m.mrr:.1f}",
                 f"{m.latency_p50_ms:.1f}", f"{m.latency_p95_ms:.1f}"]
        lines.append(_row(cells))
    seed_means = report.seed_means  # computed from the results on each access
    if seed_means:
        seed_header = ["Generator", "seeds", *(f"R@{k}" for k in cutoffs), "MRR", "R@1 min-max"]
        lines += ["", "Mean over training seeds (each generator trained once per seed; R@1 min-max across seeds):", "",
                  _row(seed_header), _separator(len(seed_header))]
        for mean in seed_means:
            cells = [mean.family, str(mean.seeds), *(f"{100 * mean.recall[k]:.1f}" for k in cutoffs), f"{100 * mean.mrr:.1f}",
                     f"{100 * mean.recall_at_1_min:.1f}-{100 * mean.recall_at_1_max:.1f}"]
            lines.append(_row(cells))
    if report.unseen_images:
        lines += ["", *_seen_unseen_table(report, cutoffs)]
    if report.comparisons:
        lines += ["", *_comparisons_table(report.comparisons)]
    described: dict[str, list[str]] = {}  # one line per description: the seeds of a family share theirs
    for result in report.results:
        if result.description:
            described.setdefault(result.description, []).append(result.name)
    if described:
        lines += ["", *(f"- **{', '.join(names)}**: {description}" for description, names in described.items())]
    return "\n".join(lines) + "\n"


def _seen_unseen_table(report: EvalReport, cutoffs: list[int]) -> list[str]:
    """Each retriever (and each family's seed mean) on the images trained on and on those ingested after training."""
    def figures(block: RetrievalMetrics | MeanFigures | None) -> list[str]:
        if block is None:
            return ["-"] * (len(cutoffs) + 1)
        return [*(f"{100 * block.recall[k]:.1f}" for k in cutoffs), f"{100 * block.mrr:.1f}"]

    header = ["Retriever", *(f"{part} {name}" for part in ("seen", "unseen") for name in (*(f"R@{k}" for k in cutoffs), "MRR"))]
    rows = [[result.name, *figures(result.seen), *figures(result.unseen)] for result in report.results]
    rows += [[f"{mean.family} (mean of {mean.seeds})", *figures(mean.seen), *figures(mean.unseen)] for mean in report.seed_means]
    seen_queries = next((r.seen.queries for r in report.results if r.seen is not None), 0)
    unseen_queries = next((r.unseen.queries for r in report.results if r.unseen is not None), 0)
    return [
        f"Seen images ({report.images - len(report.unseen_images)}, {seen_queries} queries) were trained on; unseen images "
        f"({len(report.unseen_images)}, {unseen_queries} queries) were ingested after training, without retraining:",
        "",
        _row(header),
        _separator(len(header)),
        *map(_row, rows),
    ]


def _comparisons_table(comparisons: list[PairedComparison]) -> list[str]:
    """A minus B in points, with the p-value of a paired test and whether the difference holds."""
    def p_value(p: float, significant: bool) -> str:
        return f"{'<0.001' if p < 0.001 else f'{p:.3f}'} {'✓' if significant else '–'}"

    header = ["A vs B", "ΔR@1", "p", "ΔMRR", "p"]
    rows = [[f"{c.a} vs {c.b}", f"{100 * c.recall_at_1.difference:+.1f}", p_value(c.recall_at_1.p_value, c.recall_at_1.significant),
             f"{100 * c.mrr.difference:+.1f}", p_value(c.mrr.p_value, c.mrr.significant)] for c in comparisons]
    return [
        f"Paired differences on the same {comparisons[0].queries} queries (A minus B, in points; a family of seeds by its "
        f"per-query mean over seeds). ✓: the difference holds at p < {ALPHA} (two-sided paired sign-flip test, "
        f"{ROUNDS:,} seeded rounds); –: it could be chance:",
        "",
        _row(header),
        _separator(len(header)),
        *map(_row, rows),
    ]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _separator(columns: int) -> str:
    """Under a header: the first column left-aligned, the figures right-aligned."""
    return "|" + "|".join(["---"] + ["---:"] * (columns - 1)) + "|"


def plot_report(report: EvalReport, path: Path) -> None:
    """Grouped bars of Recall@K per retriever, seen against unseen Recall@1 when images were held back,
    and latency p50/p95."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [result.name for result in report.results]
    cutoffs = sorted(report.results[0].metrics.recall) if report.results else []
    ratios = [3, 2, 2] if report.unseen_images else [3, 2]
    figure, axes = plt.subplots(1, len(ratios), figsize=(max(8, 2.2 * len(names)) * sum(ratios) / 5, 4.2), dpi=100,
                                gridspec_kw={"width_ratios": ratios})
    recall = {f"R@{k}": [100 * result.metrics.recall[k] for result in report.results] for k in cutoffs}
    _bars(axes[0], names, recall, ylabel="recall (%)", title=f"{report.queries} queries, {report.images} images")
    if report.unseen_images:
        parts = {f"{part} R@1": [100 * block.recall[1] if (block := getattr(result, part)) is not None else 0.0
                                 for result in report.results] for part in ("seen", "unseen")}
        _bars(axes[2], names, parts, ylabel="Recall@1 (%)",
              title=f"seen vs unseen ({len(report.unseen_images)} images held back)")
    latency = {label: [getattr(result.metrics, f"latency_{label}_ms") for result in report.results] for label in ("p50", "p95")}
    _bars(axes[1], names, latency, ylabel="latency per query (ms)", title="latency", percent=False)
    figure.suptitle(f"ssi-plugin eval: {Path(report.dataset).name}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _bars(axes: Any, names: list[str], series: dict[str, list[float]], *, ylabel: str, title: str, percent: bool = True) -> None:
    """One group of bars per retriever, one bar per series: percentages labelled on a 0-105 scale, else a log scale."""
    import numpy as np

    x = np.arange(len(names))
    width = 0.8 / max(len(series), 1)
    for n, (label, values) in enumerate(series.items()):
        bars = axes.bar(x + (n - (len(series) - 1) / 2) * width, values, width, label=label)
        if percent:
            axes.bar_label(bars, fmt="%.0f", fontsize=7)
    axes.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    axes.set_ylabel(ylabel)
    if percent:
        axes.set_ylim(0, 105)
    else:
        axes.set_yscale("log")
    axes.legend(fontsize=8)
    axes.set_title(title, fontsize=9)


def write_report(report: EvalReport, json_path: str | Path, *, markdown: str | Path | None = None,
                 plot: str | Path | None = None) -> ReportFiles:
    """Write the JSON, and the markdown table and PNG beside it (same name, ``.md`` / ``.png``) unless told where."""
    json_path = Path(json_path)
    files = ReportFiles(
        json_path=json_path,
        markdown=Path(markdown) if markdown is not None else json_path.with_suffix(".md"),
        plot=Path(plot) if plot is not None else json_path.with_suffix(".png"),
    )
    for path in (files.json_path, files.markdown, files.plot):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    files.markdown.write_text(markdown_table(report), encoding="utf-8")
    plot_report(report, files.plot)
    return files
