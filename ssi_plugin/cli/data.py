"""``ssi-plugin data demo|synthetic|check``: make the bundled and synthetic datasets, check any dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ssi_plugin.datasets import DatasetFormat

_OUT = click.argument("out", type=click.Path(path_type=Path, file_okay=False))


@click.group("data")
def data_group() -> None:
    """Create the demo set or a synthetic corpus; check a dataset before ingesting it."""


@data_group.command("demo")
@_OUT
def demo(out: Path) -> None:
    """Write the demo set (real photographs from installed packages, hand-written captions) to OUT."""
    from ssi_plugin.demo_data import demo_images, materialize_demo_dataset

    click.echo(f"Writing the demo set to {out} ...", err=True)
    dataset = materialize_demo_dataset(out)
    images = demo_images()
    click.echo(f"{len(images)} real images, {sum(len(i.captions) for i in images)} hand-written captions: {dataset}")


@data_group.command("synthetic")
@_OUT
@click.option("-n", "--count", "n", type=click.IntRange(min=1), required=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same corpus.")
@click.option("--captions-per-image", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--images/--no-images", "with_images", default=True, show_default=True, help="Draw the images, or captions only."
)
@click.option(
    "--image-size",
    type=click.IntRange(min=16),
    default=128,
    show_default=True,
    help="Side of the square images, in pixels.",
)
def synthetic(out: Path, n: int, seed: int, captions_per_image: int, with_images: bool, image_size: int) -> None:
    """Write a synthetic corpus of N drawn images with known contents and template captions to OUT."""
    from ssi_plugin.datasets import generate_synthetic_corpus

    click.echo(f"Generating {n} synthetic records (seed {seed}) in {out} ...", err=True)
    dataset = generate_synthetic_corpus(
        out, n, seed=seed, captions_per_image=captions_per_image, with_images=with_images, image_size=image_size
    )
    click.echo(f"{n} synthetic records{' with images' if with_images else ', captions only'}: {dataset}")


@data_group.command("check")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option(
    "--images-dir", type=click.Path(path_type=Path), help="Folder of the images (default: the dataset file's folder)."
)
@click.option("--split", help="Only this split (Karpathy: train, val, test, restval).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "karpathy", "coco"]), help="Detected when unset.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def check(dataset: Path, images_dir: Path | None, split: str | None, fmt: DatasetFormat | None, as_json: bool) -> None:
    """Read DATASET fully and count records, captions and missing images."""
    from ssi_plugin.datasets import detect_format, read_dataset
    from ssi_plugin.datasets.summary import summarize

    kind = fmt or detect_format(dataset)
    summary = summarize(read_dataset(dataset, images_dir=images_dir, split=split, format=kind))
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
        return
    click.echo(f"{dataset} ({kind}): {summary.records} images, {summary.captions} captions")
    click.echo(f"  captions per image: {', '.join(f'{k}: {v}' for k, v in summary.captions_per_image.items()) or '-'}")
    if summary.splits:
        click.echo(f"  splits: {', '.join(f'{k}: {v}' for k, v in summary.splits.items())}")
    click.echo(f"  without captions: {summary.without_captions}; without image: {summary.without_image}")
    click.echo(f"  remote images (not checked): {summary.remote_images}")
    click.echo(f"  image files missing: {summary.missing_image_files}")
    for path in summary.examples_missing:
        click.echo(f"    e.g. {path}")
    if summary.missing_image_files:
        click.echo("  (point --images-dir at the folder that holds the images)")
