"""``ssi-plugin annotate DATASET --out FILE``: identifiers and rationales for a dataset, to JSONL."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("annotate")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Output JSONL (resumed if it exists).")
@click.option("--annotator", "kind", type=click.Choice(["caption", "mllm", "http"]), default="caption", show_default=True,
              help="caption: offline, caption words (+ --image-tags); mllm: a local Hugging Face model; http: an OpenAI-compatible endpoint.")
@click.option("--image-tags", is_flag=True, help="caption: add visual objects from the EfficientNet-Lite0 classifier.")
@click.option("--model", help="mllm: model name or folder; http: served model name; caption: spaCy pipeline name.")
@click.option("--endpoint", help="http: base URL of the API, e.g. http://localhost:8000/v1.")
@click.option("--model-api-key", "api_key", envvar="SSI_ANNOTATOR_API_KEY", help="http: bearer token [env: SSI_ANNOTATOR_API_KEY].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Records per annotator batch.")
@click.option("--concurrency", type=click.IntRange(min=1), help="http: requests in flight at once.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="http: seconds per request.")
@click.option("--text-only", is_flag=True, help="http: send captions without images (for a text-only model).")
@click.option("--images-dir", type=click.Path(path_type=Path), help="Folder of the images (default: the dataset file's folder).")
@click.option("--split", help="Only this split (Karpathy: train, val, test, restval).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N records.")
@click.option("--overwrite", is_flag=True, help="Start a new output instead of resuming.")
def annotate_command(
    dataset: Path,
    out: Path,
    kind: str,
    image_tags: bool,
    model: str | None,
    endpoint: str | None,
    api_key: str | None,
    batch_size: int | None,
    concurrency: int | None,
    timeout: float | None,
    text_only: bool,
    images_dir: Path | None,
    split: str | None,
    limit: int | None,
    overwrite: bool,
) -> None:
    """Annotate DATASET (JSONL, Karpathy or COCO JSON) into --out; failures go to OUT.failures.jsonl.

    Exit code 6 when some images could not be annotated (each is listed with its reason).
    """
    import itertools

    from ssi_plugin.annotation.factory import AnnotatorOptions, create_annotator
    from ssi_plugin.annotation.job import annotate_dataset
    from ssi_plugin.datasets import read_dataset
    from ssi_plugin.errors import PartialFailure

    options = AnnotatorOptions(
        image_tags=image_tags, model=model, endpoint=endpoint, api_key=api_key,
        batch_size=batch_size, concurrency=concurrency, timeout=timeout, text_only=text_only,
    )
    total = sum(1 for _ in read_dataset(dataset, images_dir=images_dir, split=split))
    total = min(total, limit) if limit else total
    records = itertools.islice(read_dataset(dataset, images_dir=images_dir, split=split), limit)
    click.echo(f"Loading the {kind} annotator ...", err=True)
    with create_annotator(kind, options) as annotator:
        click.echo(f"Annotating {total} images of {dataset} with {annotator.version} into {out} ...", err=True)
        summary = annotate_dataset(records, annotator, out, total=total, overwrite=overwrite)
    report = summary.collisions
    click.echo(
        f"{summary.annotated} annotated, {summary.skipped} already done, {summary.failed} failed "
        f"in {summary.seconds:.1f} s ({summary.images_per_second:.0f} images/s)"
    )
    click.echo(
        f"collisions: {report.collided} of {report.images} images ({report.collision_rate:.1%}); "
        f"{report.resolved_by_concept} resolved by a further concept, {report.resolved_by_suffix} by a #n suffix"
    )
    if summary.failed:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(summary.failure_reasons.items()))
        raise PartialFailure(
            f"{summary.failed} images could not be annotated ({reasons}); see {summary.failures}",
            failed=summary.failed,
            recorded_at=str(summary.failures),
        )
