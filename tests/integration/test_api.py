"""The Python API: the README's example run as written, the serve app it exports, and bad input named.

The example trains the real default generator for one epoch (three steps on the demo photographs), so it checks
the loop a user runs, not retrieval quality.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch
from threadpoolctl import threadpool_info
from tiny_generator import IMAGES

from ssi_plugin import SSIIndex, create_app
from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import ConfigError, InputError
from ssi_plugin.generation.spec import SPEC_FILE
from ssi_plugin.serving.server import serve_in_thread

pytestmark = pytest.mark.engine

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE_INDEX = "photos"
"""The index the README's example names."""


def readme_example() -> str:
    """The first Python code block of the README's "Python API" section."""
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert match, "the README's Python API section has no python code block"
    return match.group(1)


@pytest.fixture
def example_index(engine: EngineClient) -> Iterator[str]:
    """The example's fixed index name, deleted afterwards; a cluster that holds one of its own is left alone."""
    if engine.exists(f"/{EXAMPLE_INDEX}"):
        pytest.skip(f"the cluster already has an index {EXAMPLE_INDEX!r}: the example would write into it")
    yield EXAMPLE_INDEX
    engine.request("DELETE", f"/{EXAMPLE_INDEX}", params={"ignore_unavailable": "true"})


def test_the_readme_example_runs_as_written(engine: EngineClient, engine_url: str, example_index: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the demo photographs and the failure file land here
    monkeypatch.setenv("SSI_ENGINE_URL", engine_url)  # "the environment's" URL of the example
    monkeypatch.setenv("SSI_CACHE_DIR", str(tmp_path / "cache"))

    exec(compile(readme_example(), str(README), "exec"), {"__name__": "readme_example"})

    printed = capsys.readouterr().out
    assert "22 indexed, 0 failed" in printed
    hits = re.findall(r"^(\S+) (\d+\.\d+) (objects: .+)$", printed, flags=re.MULTILINE)
    assert len(hits) == 3, printed
    assert "motorcycle" in [image for image, _, _ in hits], "the query's own words find the photograph"
    assert engine.count(example_index) == 22
    assert (tmp_path / "cache" / "models" / example_index / SPEC_FILE).is_file(), "trained where search and serve look"


def test_create_app_serves_ssi_queries_and_the_searchers_health(engine_url: str, trained_index: tuple[str, Path]) -> None:
    index, cache_dir = trained_index
    lines: list[str] = []
    app = create_app(engine_url, index=index, cache_dir=cache_dir, log=lines.append)
    assert lines[0] == f"Loading the generator of {index} (int8) ..." and lines[-1].startswith("Serving the search API of ")
    # The process answers queries concurrently: torch and the BLAS under numpy compute on the calling thread only.
    assert torch.get_num_threads() == 1
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} <= {1}
    with serve_in_thread(app) as url:
        answer = httpx.post(f"{url}/{index}/_search", json={"query": {"ssi": {"query": "a dog in the park"}}, "size": 2})
        assert answer.status_code == 200, answer.text
        assert {hit["_id"] for hit in answer.json()["hits"]["hits"]} <= set(IMAGES)
        health = httpx.get(f"{url}/_ssi/health").json()
        assert health["indices"][index]["images"] == len(IMAGES)
        assert health["indices"][index]["precision"] == "int8"


def test_ssi_queries_asked_at_once_get_the_answers_they_get_one_at_a_time(engine_url: str,
                                                                        trained_index: tuple[str, Path]) -> None:
    """serve answers concurrent queries together (their generation is batched): each answer is still its own."""
    index, cache_dir = trained_index
    queries = ["a dog in the park", "a cat on a sofa", "children playing football", "a dog and a cat at a window",
               "a brown dog running on the beach", "a red sofa", "frisbee", "two children"]

    def ranked(url: str, query: str) -> list[tuple[float, str]]:
        body = {"query": {"ssi": {"query": query}}, "size": 5, "_source": False}
        answer = httpx.post(f"{url}/{index}/_search", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        return sorted((-round(hit["_score"], 4), hit["_id"]) for hit in answer.json()["hits"]["hits"])

    with serve_in_thread(create_app(engine_url, index=index, cache_dir=cache_dir)) as url:
        alone = {query: ranked(url, query) for query in queries}
        with ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda query: (query, ranked(url, query)), queries * 4))
    assert all(alone.values()), alone
    for query, answer in together:
        assert answer == alone[query], query


def test_search_sees_what_this_object_ingests_at_once(engine: EngineClient, trained_index: tuple[str, Path],
                                                      tmp_path: Path) -> None:
    index, cache_dir = trained_index
    dataset = tmp_path / "more.jsonl"
    dataset.write_text('{"id": "img-5", "captions": ["a horse jumping over a fence"]}\n')
    with SSIIndex.connect(engine.url, index, cache_dir=cache_dir) as images:
        assert images.search("a dog", size=5).hits  # the searcher is open before the ingest
        summary = images.ingest(dataset, failures=tmp_path / "failures.jsonl", progress=False)
        assert (summary.indexed, summary.failed) == (1, 0)
        found = images.search("a horse jumping over a fence", size=5, explain=True)
        assert "img-5" in [hit.id for hit in found.hits]


def test_bad_input_is_named(engine: EngineClient, engine_url: str, index_name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ftp://x' must start with http"):
        SSIIndex.connect("ftp://x")
    with pytest.raises(ConfigError, match="verify_certs"):
        SSIIndex.connect(engine_url, verify_certs="perhaps")
    with pytest.raises(ConfigError, match="index: expected an index name, got ' '"):
        SSIIndex.connect(engine_url, " ")
    with SSIIndex.connect(engine_url, index_name, cache_dir=tmp_path) as images:
        with pytest.raises(InputError, match=r"requires \[query\]"):
            images.search()
        with pytest.raises(InputError, match="k: "):
            images.search("a dog", k=0)
        with pytest.raises(InputError, match=f"cannot read {re.escape(str(tmp_path / 'absent.png'))}"):
            images.search(image=tmp_path / "absent.png")
        with pytest.raises(ConfigError, match="epochs: "):
            images.train(epochs=0)
        with pytest.raises(InputError, match=f"index '{index_name}' does not exist"):
            images.train(epochs=1)
        with pytest.raises(InputError, match=r"dataset .*absent\.jsonl does not exist"):
            images.ingest(tmp_path / "absent.jsonl")
