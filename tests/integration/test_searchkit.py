"""Searchkit (``@searchkit/api`` from npm), a real search frontend's API layer, through ``ssi-plugin serve`` on both
engines: its query hook sends an ``ssi`` clause inside the ``bool`` query it builds, with one facet and one filter.
Its hits, facet counts and filtered hits are checked against what the engine says for the same documents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from serve_support import installed_js_script, running_proxy
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin.engine import EngineClient
from ssi_plugin.serving.searchers import IndexSearchers

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="node and npm are needed for Searchkit"),
]

@pytest.fixture(scope="module")
def searchkit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_js_script(tmp_path_factory.mktemp("searchkit"), "searchkit_check.mjs")


def test_searchkit_shows_ssi_hits_with_facets_and_a_filter(engine: EngineClient, engine_url: str, index_name: str,
                                                          tmp_path: Path, searchkit: Path) -> None:
    folder = index_with_generator(engine, index_name, tmp_path)
    searchers = IndexSearchers(engine, cache_dir=tmp_path, index=index_name, model_dir=folder)
    try:
        with running_proxy(engine_url, searchers, engine=engine.kind) as url:
            done = subprocess.run(["node", searchkit.name], cwd=searchkit.parent, capture_output=True, text=True, timeout=120,
                                  check=False, env={**os.environ, "PROXY_URL": url, "INDEX": index_name,
                                                    "QUERY": "a dog in the park", "FILTER": "dog"})
            assert done.returncode == 0, done.stderr
            seen = json.loads(done.stdout)
            direct = searchers(index_name, {"query": {"ssi": {"query": "a dog in the park"}}, "size": 10}, {})
    finally:
        searchers.close()
    plain, filtered = seen["plain"], seen["filtered"]
    assert plain["ids"] == [hit["_id"] for hit in direct["hits"]["hits"]]  # what the ssi search answers through the API
    assert plain["nbHits"] == direct["hits"]["total"]["value"]
    expected: dict[str, int] = {}
    for image in plain["ids"]:
        for scene in IMAGES[image][0].scene:
            expected[scene] = expected.get(scene, 0) + 1
    assert plain["facets"]["scene"] == expected  # the engine's counts over the documents the search matched
    assert filtered["ids"] and all("dog" in IMAGES[image][0].objects for image in filtered["ids"])
    assert set(filtered["ids"]) == {image for image, (ssi, _) in IMAGES.items() if "dog" in ssi.objects} & set(plain["ids"])
    assert sum(filtered["facets"]["scene"].values()) == len(filtered["ids"])
