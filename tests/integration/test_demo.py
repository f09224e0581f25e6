"""``ssi-plugin demo``, the README's main command, end to end on the real engine.

It runs with ``--epochs 1`` (three training steps of the real default model)
so that the test takes seconds: the figures it prints are then meaningless,
and the test checks what a user sees, not a quality number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from ssi_plugin.cli import cli
from ssi_plugin.demo import DEMO_INDEX, EXAMPLE_QUERIES
from ssi_plugin.engine import EngineClient

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="the demo runs on the embedded default, OpenSearch; "
                                                              "the eval job it drives is tested on both engines")]

SEARCH_LINE = re.compile(r'^  "(.+)"  \(\d+ ms; written for \S+, (?:trained on|ingested after training)\)$', flags=re.MULTILINE)
"""An example search as the demo prints it: the query, how long it took, and whether its image was trained on."""


@pytest.fixture
def demo_index(engine: EngineClient) -> Iterator[str]:
    """The demo's fixed index name, removed afterwards unless it was there before (a developer's own demo)."""
    existed = engine.exists(f"/{DEMO_INDEX}")
    yield DEMO_INDEX
    if not existed:
        engine.request("DELETE", f"/{DEMO_INDEX}", params={"ignore_unavailable": "true"})


def test_demo_shows_searches_and_the_table_then_reuses_its_model(engine_url: str, demo_index: str, tmp_path: Path) -> None:
    command = ["--url", engine_url, "--cache-dir", str(tmp_path), "demo", "--epochs", "1"]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.output

    searches = SEARCH_LINE.findall(first.output)
    assert len(searches) == EXAMPLE_QUERIES
    hits = re.findall(r"^    1\. (\S+) +\[(objects: .+)\]$", first.output, flags=re.MULTILINE)
    assert len(hits) == EXAMPLE_QUERIES  # every example query has a top hit, shown with its identifier
    assert first.output.count("matched: ") >= EXAMPLE_QUERIES
    for retriever in ("bm25", "dense-minilm", "ssi"):
        assert re.search(rf"^\| {retriever} \| \d+\.\d \|", first.output, flags=re.MULTILINE), retriever
        # and a row of seen and unseen figures: four of each
        assert re.search(rf"^\| {retriever}( \| \d+\.\d){{8}} \|$", first.output, flags=re.MULTILINE), retriever
    assert "unseen images (7, 28 queries) were ingested after training" in first.output
    folder = json.loads((tmp_path / "demo" / "report.json").read_text())["models"]["ssi"]["folder"]
    serve = f"ssi-plugin --url {engine_url} --cache-dir {tmp_path} serve --index {demo_index} --model {folder}"
    page = f"http://127.0.0.1:8080/_ssi/?{urlencode({'q': searches[0]})}"
    assert first.output.rstrip().endswith(f"{serve}\n  {page}")  # how to see the results as pictures

    report_path = tmp_path / "demo" / "report.json"
    report = json.loads(report_path.read_text())
    assert (report["images"], report["queries"], report["index"], len(report["unseen_images"])) == (22, 88, demo_index, 7)
    assert {r["name"]: (r["seen"]["queries"], r["unseen"]["queries"]) for r in report["results"]}["ssi"] == (60, 28)
    assert (tmp_path / "demo" / "report.md").is_file() and (tmp_path / "demo" / "report.png").is_file()
    trained = Path(report["models"]["ssi"]["folder"]) / "training_report.json"
    trained_at = trained.stat().st_mtime_ns

    second = CliRunner().invoke(cli, command)
    assert second.exit_code == 0, second.output
    assert trained.stat().st_mtime_ns == trained_at  # the model trained before is reused, not trained again
    assert SEARCH_LINE.findall(second.output) == searches
    again = json.loads(report_path.read_text())
    assert _rankings(again) == _rankings(report)


def _rankings(report: dict) -> dict[str, list[list[str]]]:
    """What each retriever ranked for each query (the latencies differ from run to run)."""
    return {result["name"]: [outcome["ranked"] for outcome in result["outcomes"]] for result in report["results"]}
