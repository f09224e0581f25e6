"""The light commands and the public API's import start without the heavy libraries: no model library, no engine client,
no HTTP stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"torch", "transformers", "elasticsearch", "opensearchpy", "httpx"}


def _run_with_importtime(args: list[str], cache_dir: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGS``; the result and every module it imported."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL")}
    env["SSI_CACHE_DIR"] = str(cache_dir)
    result = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=env, timeout=120)
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result, modules


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


def test_engine_status_loads_no_model_library_and_no_engine_client(tmp_path: Path) -> None:
    result, modules = _run_with_importtime(["-m", "ssi_plugin", "engine", "status"], tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stdout.startswith("not running (data in ")
    assert "ssi_plugin.engine.local_node" in modules
    assert _top_level(modules) & HEAVY == set()


@pytest.mark.parametrize("args", [["-m", "ssi_plugin", "--help"], ["-c", "import ssi_plugin"],
                                  ["-c", "from ssi_plugin import SSIIndex, create_app"]], ids=["help", "import", "api"])
def test_help_and_import_load_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    result, modules = _run_with_importtime(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ssi_plugin" in modules
    assert _top_level(modules) & HEAVY == set()
