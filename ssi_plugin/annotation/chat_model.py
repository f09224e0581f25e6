"""A local Hugging Face model that answers chat conversations in the OpenAI message format.

One class serves both the ``mllm`` annotator and ``ssi-plugin serve-model``:
conversations come in as OpenAI chat messages (``content`` a string, or parts
``{"type": "text"}`` / ``{"type": "image_url", "image_url": {"url": ...}}``
where the URL is a ``data:`` URL, or an http(s) URL or a local path read under
the rules of ``image_urls``), and are turned into the model's own chat
template. Image-text-to-text models (LLaVA, Qwen2-VL, SmolVLM, ...) see the images; a text-only causal LM
(SmolLM2, ...) is accepted too and refuses images with a clear error.

Generation is batched with left padding; greedy unless a temperature is given.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ssi_plugin.annotation.image_urls import ImageURLReader
from ssi_plugin.errors import InputError, ModelError
from ssi_plugin.quiet import quiet_weight_loading

Message = dict[str, Any]


class Completion(BaseModel):
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class LocalChatModel:
    """A model folder or hub name (offline: ``HF_HUB_OFFLINE=1`` reads only the local cache).

    ``images`` reads the images that messages name; the default refuses local
    paths and non-public addresses.
    """

    def __init__(
        self, model: str, *, device: str | None = None, gguf_file: str | None = None, images: ImageURLReader | None = None
    ) -> None:
        self.model_name = model
        self.device = device or "cpu"
        self.gguf_file = gguf_file
        self.images = images or ImageURLReader()

    @property
    def name(self) -> str:
        """A short, stable name: the folder name for a local path, else the hub name."""
        path = Path(self.model_name)
        return path.name if path.exists() else self.model_name

    @functools.cached_property
    def _loaded(self) -> tuple[Any, Any, bool]:
        try:
            from transformers import (
                AutoConfig,
                AutoModelForCausalLM,
                AutoModelForImageTextToText,
                AutoProcessor,
                AutoTokenizer,
            )
            from transformers.models.auto.modeling_auto import (
                MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
            )
        except ImportError as exc:  # pragma: no cover - transformers is a dependency
            raise ModelError(f"local models need transformers: {exc}") from None
        quiet_weight_loading()
        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        try:
            config = AutoConfig.from_pretrained(self.model_name, **extra)
            vision = config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
            if vision:
                processor = AutoProcessor.from_pretrained(self.model_name)
                model = AutoModelForImageTextToText.from_pretrained(self.model_name, **extra)
            else:
                processor = AutoTokenizer.from_pretrained(self.model_name, **extra)
                model = AutoModelForCausalLM.from_pretrained(self.model_name, **extra)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {self.model_name!r}: {exc}") from None
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if getattr(tokenizer, "chat_template", None) is None and getattr(processor, "chat_template", None) is None:
            raise ModelError(f"model {self.model_name!r} has no chat template")
        return model.to(self.device).eval(), processor, vision  # type: ignore[arg-type]  # transformers types .to unbound

    @property
    def sees_images(self) -> bool:
        return self._loaded[2]

    def load(self) -> LocalChatModel:
        """Load now (otherwise on first use)."""
        _ = self._loaded
        return self

    def complete(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[Completion]:
        """One completion per conversation. Raises ``InputError`` for a malformed message or image."""
        import torch

        model, processor, vision = self._loaded
        converted = [[self._message(m, vision) for m in conversation] for conversation in conversations]
        tokenizer = getattr(processor, "tokenizer", processor)
        options: dict[str, Any] = {"add_generation_prompt": True, "tokenize": True, "return_dict": True, "return_tensors": "pt"}
        if vision:
            inputs = processor.apply_chat_template(converted, processor_kwargs={"padding": True}, **options)
        else:
            inputs = processor.apply_chat_template(converted, padding=True, **options)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = model.generate(
                **inputs, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
            )
        prompt_length = inputs["input_ids"].shape[1]
        completions = []
        for row, mask in zip(output, inputs["attention_mask"], strict=True):
            new = row[prompt_length:]
            ended = bool((new == tokenizer.eos_token_id).any()) if tokenizer.eos_token_id is not None else False
            if ended:
                new = new[: int((new == tokenizer.eos_token_id).nonzero()[0])]
            completions.append(
                Completion(
                    text=tokenizer.decode(new, skip_special_tokens=True),
                    prompt_tokens=int(mask.sum()),
                    completion_tokens=len(new) + int(ended),
                    finish_reason="stop" if ended else "length",
                )
            )
        return completions

    def _message(self, message: Message, vision: bool) -> Message:
        role = message.get("role")
        content = message.get("content")
        if role not in {"system", "user", "assistant"}:
            raise InputError(f"message role {role!r} is not system, user or assistant")
        if isinstance(content, str):
            return {"role": role, "content": [{"type": "text", "text": content}] if vision else content}
        if not isinstance(content, list):
            raise InputError(f"message content must be a string or a list of parts, not {type(content).__name__}")
        parts: list[dict[str, Any]] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                if not vision:
                    raise InputError(f"model {self.name!r} reads text only; send the caption without the image")
                url = (part.get("image_url") or {}).get("url") if isinstance(part.get("image_url"), dict) else part.get("image_url")
                parts.append({"type": "image", "image": self.images.read(str(url or ""))})
            else:
                raise InputError(f"message part type {kind!r} is not text or image_url")
        if vision:
            return {"role": role, "content": parts}
        return {"role": role, "content": "".join(p["text"] for p in parts)}

