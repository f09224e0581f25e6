"""Loading a model prints none of transformers' own progress bars; the Hub's download bars stay on."""

from __future__ import annotations

import os
import subprocess
import sys

LOAD = """
from huggingface_hub.utils import are_progress_bars_disabled
from ssi_plugin.embedding import MiniLMEncoder
from ssi_plugin.generation.models import load_base

MiniLMEncoder()
load_base("minilm-encoder-decoder", decoder_layers=1)
print("hub download bars disabled:", are_progress_bars_disabled())
"""


def test_loading_models_prints_no_weight_loading_bars() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr + done.stdout
    assert "hub download bars disabled: False" in done.stdout
