"""The official OpenSearch JavaScript client (``@opensearch-project/opensearch`` from npm) against ``ssi-plugin serve``.

Needs node and npm; the client is installed with ``npm ci`` from ``tests/js``'s lock
file into a temporary folder, so the working tree stays clean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch
from opensearchpy.helpers import bulk
from serve_support import CAPTIONS, MatchSearcher, installed_js_script, running_proxy, without_took

pytestmark = [
    pytest.mark.engine,
    pytest.mark.opensearch_only(
        reason="drives the endpoint with OpenSearch's own clients; the Elasticsearch core node lacks GET / (rest-root)"
    ),
    pytest.mark.skipif(
        not (shutil.which("node") and shutil.which("npm")),
        reason="node and npm are needed for the JavaScript client",
    ),
]

@pytest.fixture(scope="module")
def js_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the JavaScript client installed and the check script beside it."""
    return installed_js_script(tmp_path_factory.mktemp("js-client"), "serve_client.mjs")


@pytest.fixture
def proxied_index(engine_url: str, index_name: str) -> Iterator[tuple[str, str]]:
    with running_proxy(engine_url, MatchSearcher(engine_url)) as url:
        client = OpenSearch(hosts=[url])
        actions = ({"_index": index_name, "_id": str(i), "_source": {"caption": c}} for i, c in enumerate(CAPTIONS))
        bulk(client, actions, refresh=True)
        client.close()
        yield url, index_name


def test_the_javascript_client_searches_normally_and_with_ssi(
    js_client: Path, proxied_index: tuple[str, str], engine_url: str
) -> None:
    url, index = proxied_index
    run = subprocess.run(
        ["node", str(js_client)],
        env={**os.environ, "PROXY_URL": url, "INDEX": index},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)

    direct = OpenSearch(hosts=[engine_url])
    expected_normal = direct.search(index=index, body={"query": {"match": {"caption": "dog"}}})
    expected_ssi = direct.search(index=index, body={"query": {"match": {"caption": "dog"}}, "size": 2})
    direct.close()
    assert seen["normal"]["status"] == 200
    assert without_took(seen["normal"]["body"]) == without_took(expected_normal)
    assert seen["ssi"]["status"] == 200
    assert without_took(seen["ssi"]["body"]) == without_took(expected_ssi)
    assert seen["refused"]["status"] == 400
    assert seen["refused"]["type"] == "parsing_exception"
    assert "[colour]" in seen["refused"]["reason"]
