"""A generator folder: a Hugging Face model and tokenizer, ``generator.json``, and ``trie/``.

``generator.json`` says how text becomes model input and where an identifier
ends, so training, decoding and the trie agree on one tokenization::

    folder/
      config.json, model.safetensors, tokenizer.json, ...   (save_pretrained)
      generator.json                                          (GeneratorSpec)
      trie/manifest.json, *.marisa, *.npy                     (IdentifierTrie)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssi_plugin import __version__
from ssi_plugin.errors import ModelError

SPEC_FILE = "generator.json"
TRIE_FOLDER = "trie"
FORMAT = "ssi-plugin/generator"
FORMAT_VERSION = 1

Architecture = Literal["seq2seq", "causal"]
IdentifierKind = Literal["ssi", "numeric"]


class GeneratorSpec(BaseModel):
    """How a model folder is driven. ``end_token_id`` closes an identifier (and a rationale after it)."""

    model_config = ConfigDict(extra="ignore")

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    created_with: str = __version__
    architecture: Architecture
    identifier_kind: IdentifierKind = "ssi"
    end_token_id: int = Field(ge=0)
    prompt_suffix: str = Field(default="\nidentifier:", description="Appended to the query of a causal model.")
    max_query_tokens: int = Field(default=64, ge=4)
    max_identifier_tokens: int = Field(default=48, ge=2)
    tokenizer_fingerprint: str
    library_versions: dict[str, str] = Field(default_factory=dict)

    def save(self, folder: Path) -> None:
        (folder / SPEC_FILE).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> GeneratorSpec:
        path = folder / SPEC_FILE
        if not path.is_file():
            raise ModelError(f"{folder} is not a generator folder ({SPEC_FILE} is missing); train one with `ssi-plugin train`")
        try:
            spec = cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, ValidationError) as exc:
            raise ModelError(f"{path} is not a valid generator spec: {exc}") from None
        if spec.format != FORMAT or spec.format_version > FORMAT_VERSION:
            raise ModelError(f"{path} is {spec.format} v{spec.format_version}; this version reads {FORMAT} v{FORMAT_VERSION}")
        return spec


def architecture_of(model: Any) -> Architecture:
    return "seq2seq" if getattr(model.config, "is_encoder_decoder", False) else "causal"


def end_token_of(tokenizer: Any) -> int:
    """The token that closes an identifier: the separator token when the tokenizer has one, else end-of-sequence."""
    token_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if token_id is None:
        raise ModelError("the tokenizer has neither a separator nor an end-of-sequence token to close identifiers")
    return int(token_id)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of the vocabulary, so a trie built for another tokenizer is refused."""
    vocabulary = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return hashlib.sha256(json.dumps(vocabulary).encode("utf-8")).hexdigest()[:16]


def encode_identifiers(tokenizer: Any, identifiers: Sequence[str]) -> list[list[int]]:
    """Token ids of identifiers, without special tokens: the one encoding shared by training and the trie."""
    return tokenizer(list(identifiers), add_special_tokens=False)["input_ids"]


def prompt_ids(tokenizer: Any, spec: GeneratorSpec, text: str) -> tuple[list[int], int, bool]:
    """Model input ids for ``text`` (training and querying alike), its full token count, and whether it was cut."""
    limit = spec.max_query_tokens
    ids = tokenizer(text)["input_ids"]
    tokens = len(ids)
    if tokens > limit:
        ids = tokenizer(text, truncation=True, max_length=limit)["input_ids"]
    if spec.architecture == "causal":
        ids = ids + tokenizer(spec.prompt_suffix, add_special_tokens=False)["input_ids"]
    return ids, tokens, tokens > limit


def library_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"ssi-plugin": __version__, "torch": torch.__version__, "transformers": transformers.__version__}
