"""Images checked before annotation: a missing or corrupt local file is a recorded ``image_unreadable`` failure, not a document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from ssi_plugin.annotation import AnnotatorOptions, create_annotator
from ssi_plugin.annotation.base import Annotation, AnnotationFailure, Annotator
from ssi_plugin.annotation.images import check_image
from ssi_plugin.annotation.job import annotate_dataset, failures_path
from ssi_plugin.cli import cli
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import AnnotationError, PartialFailure

CAPTION = "A brown dog catches a red frisbee in the park."


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path]:
    """A good JPEG and PNG, a .jpg that holds text, a PNG whose pixel data is damaged, and a path with no file."""
    good_jpeg, good_png = tmp_path / "good.jpg", tmp_path / "good.png"
    Image.new("RGB", (32, 24), (10, 120, 30)).save(good_jpeg)
    Image.new("RGB", (32, 24), (10, 120, 30)).save(good_png)
    text = tmp_path / "text.jpg"
    text.write_text("this is not a picture")
    damaged = bytearray(good_png.read_bytes())
    damaged[damaged.index(b"IDAT") + 8] ^= 0xFF
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(damaged)
    return {"good.jpg": good_jpeg, "good.png": good_png, "text.jpg": text, "corrupt.png": corrupt, "missing.jpg": tmp_path / "missing.jpg"}


@pytest.fixture(scope="module")
def checked() -> Iterator[Annotator]:
    with create_annotator("caption") as annotator:
        yield annotator


def test_good_images_urls_and_imageless_records_pass(pictures: dict[str, Path]) -> None:
    for ref in (str(pictures["good.jpg"]), str(pictures["good.png"]), "https://example.invalid/photo.jpg", None):
        check_image(ref)


@pytest.mark.parametrize(
    ("name", "message"),
    [("text.jpg", "is not an image in a known format"), ("corrupt.png", "is not a readable image: broken PNG file"),
     ("missing.jpg", "cannot read .*missing.jpg: No such file or directory")],
)
def test_bad_images_are_refused_by_name(pictures: dict[str, Path], name: str, message: str) -> None:
    with pytest.raises(AnnotationError, match=message) as refused:
        check_image(str(pictures[name]))
    assert refused.value.reason == "image_unreadable" and name in refused.value.detail


def test_the_factory_checks_images_for_every_annotator_and_keeps_the_order(checked: Annotator, pictures: dict[str, Path]) -> None:
    refs = [str(pictures["good.jpg"]), str(pictures["text.jpg"]), str(pictures["missing.jpg"]), "https://example.invalid/a.jpg", None]
    records = [ImageRecord(id=f"r{n}", image=ref, captions=(CAPTION,)) for n, ref in enumerate(refs)]
    results = list(checked.annotate(records))
    assert [r.id for r in results] == ["r0", "r1", "r2", "r3", "r4"]
    assert [type(r) for r in results] == [Annotation, AnnotationFailure, AnnotationFailure, Annotation, Annotation]
    assert [r.reason for r in results if isinstance(r, AnnotationFailure)] == ["image_unreadable", "image_unreadable"]
    assert (checked.name, checked.version) == ("caption", create_annotator("caption", AnnotatorOptions(check_images=False)).version)


def test_an_annotator_that_sends_no_image_is_checked_too(pictures: dict[str, Path]) -> None:
    options = AnnotatorOptions(model="m", endpoint="http://127.0.0.1:9/v1", text_only=True)
    with create_annotator("http", options) as annotator:
        [result] = annotator.annotate([ImageRecord(id="x", image=str(pictures["missing.jpg"]), captions=(CAPTION,))])
    assert isinstance(result, AnnotationFailure) and result.reason == "image_unreadable"


def test_without_the_check_the_caption_annotator_never_opens_the_image(pictures: dict[str, Path]) -> None:
    with create_annotator("caption", AnnotatorOptions(check_images=False)) as unchecked:
        [result] = unchecked.annotate([ImageRecord(id="x", image=str(pictures["text.jpg"]), captions=(CAPTION,))])
    assert isinstance(result, Annotation)


def test_an_annotation_run_records_unreadable_images_and_goes_on(checked: Annotator, pictures: dict[str, Path], tmp_path: Path) -> None:
    records = [ImageRecord(id=name, image=str(path), captions=(CAPTION,)) for name, path in pictures.items()]
    out = tmp_path / "out.jsonl"
    summary = annotate_dataset(records, checked, out, progress=False)
    assert (summary.annotated, summary.failed) == (2, 3)
    assert summary.failure_reasons == {"image_unreadable": 3}
    failed = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert {(f["id"], f["reason"]) for f in failed} == {("text.jpg", "image_unreadable"), ("corrupt.png", "image_unreadable"),
                                                         ("missing.jpg", "image_unreadable")}


def test_the_annotate_command_checks_images_unless_told_not_to(pictures: dict[str, Path], tmp_path: Path) -> None:
    dataset = tmp_path / "dataset.jsonl"
    rows = [{"id": "good", "image": "good.jpg", "captions": [CAPTION]}, {"id": "text", "image": "text.jpg", "captions": [CAPTION]}]
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))

    checked_run = CliRunner().invoke(cli, ["annotate", str(dataset), "--out", str(tmp_path / "checked.jsonl")])
    assert isinstance(checked_run.exception, PartialFailure)
    assert "1 images could not be annotated (image_unreadable: 1)" in str(checked_run.exception)

    unchecked_run = CliRunner().invoke(cli, ["annotate", str(dataset), "--out", str(tmp_path / "unchecked.jsonl"), "--no-image-check"])
    assert unchecked_run.exit_code == 0, unchecked_run.output
    assert len((tmp_path / "unchecked.jsonl").read_text().splitlines()) == 2
