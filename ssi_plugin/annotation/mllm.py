"""The ``mllm`` annotator: a local Hugging Face image-text-to-text model prompted for identifier + rationale.

Any model ``transformers`` loads as image-text-to-text (by hub name from the
local cache, or a folder) sees the image and the caption; a text-only chat
model (e.g. SmolLM2-135M-Instruct) is accepted and annotates from captions
alone. The prompt, repair and retry rules are in ``prompted.py``; the first
try is greedy, retries sample at temperature 0.7 from a fixed seed, so a run
is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

from ssi_plugin.annotation.chat_model import LocalChatModel
from ssi_plugin.annotation.prompted import (
    PROMPT_VERSION,
    RETRY_TEMPERATURE,
    Message,
    PromptedAnnotator,
)
from ssi_plugin.errors import AnnotationError


class MLLMAnnotator(PromptedAnnotator):
    """Identifiers written by a local (multimodal) language model."""

    name = "mllm"

    def __init__(
        self,
        model: str | LocalChatModel,
        *,
        batch_size: int = 4,
        max_new_tokens: int = 160,
        retries: int = 2,
        seed: int = 0,
    ) -> None:
        self.chat = model if isinstance(model, LocalChatModel) else LocalChatModel(model)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.retries = retries
        self.seed = seed

    @property
    def version(self) -> str:
        return f"mllm/{PROMPT_VERSION} {self.chat.name}"

    @property
    def sends_images(self) -> bool:
        return self.chat.sees_images

    def complete(self, conversations: Sequence[list[Message]], *, attempt: int) -> list[str | AnnotationError]:
        completions = self.chat.complete(
            conversations,
            max_new_tokens=self.max_new_tokens,
            temperature=RETRY_TEMPERATURE if attempt else 0.0,
            seed=self.seed + attempt,
        )
        return [completion.text for completion in completions]
