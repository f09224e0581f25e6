"""``ssi-plugin data ...``: what a user types to get the demo set, a synthetic corpus, or a dataset check."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ssi_plugin.cli import cli
from ssi_plugin.datasets import read_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


def test_data_demo_writes_the_demo_set(tmp_path):
    result = CliRunner().invoke(cli, ["data", "demo", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "22 real images" in result.output
    assert len(list(read_dataset(tmp_path / "demo"))) == 22


def test_data_synthetic_captions_only(tmp_path):
    result = CliRunner().invoke(cli, ["data", "synthetic", str(tmp_path), "-n", "40", "--seed", "5", "--no-images"])
    assert result.exit_code == 0, result.output
    records = list(read_dataset(tmp_path))
    assert len(records) == 40
    assert all(r.image is None and len(r.captions) == 5 for r in records)
    assert not (tmp_path / "images").exists()


def test_data_check_counts_missing_images_as_json():
    result = CliRunner().invoke(cli, ["data", "check", str(FIXTURES / "captions_tiny2014.json"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["records"] == 3
    assert summary["without_captions"] == 1
    assert summary["missing_image_files"] == 3
    fixed = CliRunner().invoke(
        cli,
        ["data", "check", str(FIXTURES / "captions_tiny2014.json"), "--images-dir", str(FIXTURES / "images"), "--json"],
    )
    assert json.loads(fixed.output)["missing_image_files"] == 0


def test_data_check_reports_malformed_input_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{"id": 1.5}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "check", str(bad)])
    assert result.exit_code != 0
    assert "line 2" in str(result.exception)
