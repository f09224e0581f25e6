"""The packaged MiniLM encoder, recording what it is asked to embed: tests of what is embedded once and kept.

Test support, not part of the installed package: tests import it as ``encoders`` (``tests/`` is on pytest's path).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssi_plugin.embedding import shared_encoder


class CountingEncoder:
    """The packaged encoder, recording what it is asked to embed."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.asked.extend(texts)
        return shared_encoder().encode(texts)
