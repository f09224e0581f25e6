"""Tiny, randomly initialised models built in seconds without a download: every code path of a real one runs.

- ``tiny_model``: a seq2seq or causal generator base of a few thousand parameters, its WordPiece vocabulary
  built from given texts (the generator's tests, ``benchmarks.generation --quick``).
- ``build_tiny_vlm``: a LLaVA-style model folder. No vision-language model ships in a package registry, so
  the ``mllm`` annotator's and ``serve-model``'s tests use this one: a CLIP vision tower and a Llama text
  model of a few dozen hidden units, a byte-level BPE tokenizer trained on the spot with an ``<image>``
  token, and a chat template. It writes nonsense, which is what exercises repair, retry and rejection.
- ``before_each_decoder_call``: runs a function before each decoder call of a generator's beam search (to count
  them, slow them down or see the thread count they run with).

Test support, not part of the installed package: tests import it as ``tiny_models`` (``tests/`` is on
pytest's path), benchmarks as ``tests.tiny_models``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ssi_plugin.generation.models import configure_seq2seq

CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)
_TEXTS = [
    (
        'Write a Structured Semantic Identifier for the image. {"objects": ["dog", "frisbee"], "actions": ["catch"],'
        ' "attributes": ["brown"], "scene": ["park"], "rationale": "A brown dog catches a frisbee in a park."}'
    ),
    "A man rides a red bicycle down a city street. Two children play soccer on a field near a lake.",
]


def build_tiny_vlm(folder: str | os.PathLike[str], *, seed: int = 0, image_size: int = 32) -> Path:
    """Write the model, processor and tokenizer to ``folder``; returns it. Same seed, same weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = Path(folder)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500, special_tokens=["<pad>", "<s>", "</s>", "<image>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(_TEXTS * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>", extra_special_tokens={"image_token": "<image>"}
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    patch = image_size // 4
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(image_size=image_size, patch_size=patch, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=1, num_attention_heads=2)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    # image_token_id: the config's alias of image_token_index (its attribute_map), missing from its typed signature
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)  # type: ignore[call-arg]
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_model(texts: list[str], *, architecture: str = "seq2seq", seed: int = 0) -> tuple[Any, Any]:
    """A randomly initialised model of a few thousand parameters with a WordPiece tokenizer built from ``texts``."""
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


@contextmanager
def before_each_decoder_call(generator: Any, action: Callable[[], object]) -> Iterator[None]:
    """``action()`` before each decoder call of ``generator``: a call of its traced decoder steps when it has them
    (they do not go through the model's ``forward``), else a forward pre-hook of its model."""
    steps = generator._steps
    if steps is None:
        hook = generator.model.register_forward_pre_hook(lambda *_: action())
        try:
            yield
        finally:
            hook.remove()
        return

    def preceded(call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            action()
            return call(*args)
        return run

    steps.start, steps.step = preceded(steps.start), preceded(steps.step)
    try:
        yield
    finally:
        del steps.start, steps.step
