"""Fine-tune a generator on text -> identifier, with the rationale as a weighted auxiliary target (RGS).

The target of every example is ``identifier <end> rationale <end>``. The loss is

    mean CE over identifier tokens (and the first <end>)  +  lambda * mean CE over rationale tokens

so ``rationale_weight=0`` turns Rationale-Guided Supervision off (and the
rationale is not even fed). At query time decoding stops at the first <end>.
The run checkpoints every ``checkpoint_every`` steps into ``out/checkpoint``
and resumes from there; the data order is a function of the seed and the
epoch, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ssi_plugin.errors import ConfigError, InputError, OutputUnwritable, writing
from ssi_plugin.extras import requires_extra
from ssi_plugin.generation.examples import (
    TrainingExample,
    numeric_identifiers,
    trie_pairs,
)
from ssi_plugin.generation.models import DEFAULT_BASE
from ssi_plugin.generation.spec import SPEC_FILE, GeneratorSpec, prompt_ids
from ssi_plugin.progress import progress_bar

CHECKPOINT = "checkpoint"
REPORT = "training_report.json"
CURVES = "loss_curves.png"


class LoraSettings(BaseModel):
    r: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"


class TrainingConfig(BaseModel):
    """Everything that decides the trained model; a resumed run must use the same."""

    base: str = Field(default=DEFAULT_BASE, description=f"{DEFAULT_BASE!r} or a local Hugging Face model folder.")
    decoder_layers: int = Field(default=2, ge=1, description="Decoder depth of the default encoder-decoder (warm-started "
                                "from MiniLM's first layers). 4 layers gained 0.6 points of Recall@1 on held-out hand-written "
                                "captions (6 on the synthetic corpus) but doubled the decoder's share of a query: end to end "
                                "on a 100k-image index p50 went from 134 to 254 ms, past the 150 ms target.")
    identifier_kind: Literal["ssi", "numeric"] = "ssi"
    rationale_weight: float = Field(default=0.5, ge=0, description="lambda of RGS; 0 turns it off.")
    epochs: int | None = Field(default=None, ge=1, description="None: enough epochs for about `examples_seen` examples "
                               "(a small corpus is seen many times, a large one a few times).")
    examples_seen: int = Field(default=2400, ge=1, description="Training length when `epochs` is None.")
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=3e-4, gt=0)
    encoder_learning_rate: float | None = Field(
        default=3e-5, ge=0, description="Learning rate of a seq2seq model's pretrained encoder; None: `learning_rate`, "
        "0: frozen. The decoder and cross-attention are new and need the full rate; the encoder already maps "
        "paraphrases close together, and at the full rate a few dozen captions teach it to forget that.")
    word_dropout: float = Field(
        default=0.1, ge=0, lt=1, description="Chance that each word of a training text is left out of one batch "
        "(at least one word stays). A model trained on one caption per image otherwise leans on single words, and a "
        "paraphrase that repeats another image's word goes there. 0.1 gained about one point of Recall@1, the mean of "
        "three seeds, on the demo set and on held-out hand-written captions; 0.2 lost four on the demo set.")
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.05, ge=0, lt=1)
    lora: LoraSettings | None = None
    seed: int = 0
    max_query_tokens: int = Field(default=64, ge=4)
    max_identifier_tokens: int = Field(default=48, ge=2)
    max_rationale_tokens: int = Field(default=48, ge=1)
    checkpoint_every: int = Field(default=200, ge=1)

    def epochs_for(self, examples: int) -> int:
        """``epochs``, or when unset ``examples_seen / examples`` rounded up, within 3..200."""
        if self.epochs is not None:
            return self.epochs
        return min(200, max(3, -(-self.examples_seen // max(examples, 1))))


class LossPoint(BaseModel):
    step: int
    loss: float
    identifier_loss: float
    rationale_loss: float | None = None


class TrainingReport(BaseModel):
    out: str
    examples: int
    images: int
    steps: int
    epochs: int
    seconds: float
    examples_per_second: float
    resumed_from_step: int = 0
    final_identifier_loss: float
    history: list[LossPoint]
    curves: str


def train(
    examples: Iterable[TrainingExample],
    out: str | Path,
    config: TrainingConfig | None = None,
    *,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    threads: int | None = 1,
) -> TrainingReport | None:
    """Train on ``examples`` and write a generator folder (model, tokenizer, spec, trie of the examples' images) to ``out``.

    ``stop_after=n`` stops after ``n`` steps of this run with a checkpoint and returns None
    (time-boxed training; the next call resumes). ``threads``: torch's intra-op threads
    while training (restored afterwards; None leaves them alone). One by default: on
    the 2-core machine two threads trained 4x slower under load (``benchmarks/generation.py``).
    """
    from ssi_plugin.threads import intra_op_threads

    with intra_op_threads(threads):
        return _train(list(examples), Path(out), config or TrainingConfig(), resume=resume, overwrite=overwrite,
                      progress=progress, stop_after=stop_after)


def _train(examples: list[TrainingExample], out: Path, config: TrainingConfig, *, resume: bool, overwrite: bool,
           progress: bool, stop_after: int | None) -> TrainingReport | None:
    import torch

    if not examples:
        raise InputError("no training examples")
    if config.lora is not None:
        _peft()  # a missing extra is named before the output folder is touched
    if config.identifier_kind == "numeric":
        examples = numeric_identifiers(examples, seed=config.seed)
    start_step = _prepare_out(out, config, resume=resume, overwrite=overwrite)

    torch.manual_seed(config.seed)
    model, tokenizer, spec = load_for_training(config)
    batches = _Batches(examples, tokenizer, spec, config)
    steps_per_epoch = len(batches)
    epochs = config.epochs_for(len(examples))
    total_steps = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(_parameter_groups(model, spec.architecture, config),
                                  weight_decay=config.weight_decay, fused=True)  # one kernel: ~6x faster steps on the CPU
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * config.warmup_ratio), total_steps)
    history: list[LossPoint] = []
    if start_step:
        history = _load_checkpoint(out / CHECKPOINT, model, optimizer, scheduler)

    from ssi_plugin.generation.constraint import output_layer_path

    head_path = output_layer_path(model)
    model.train()
    started = time.perf_counter()
    seen = 0
    with progress_bar("training", total=total_steps, enabled=progress, completed=start_step, fields={"loss": "loss {:.3f}"}) as advance:
        for step in range(start_step, total_steps):
            epoch, index = divmod(step, steps_per_epoch)
            batch = batches.batch(epoch, index)
            identifier_loss, rationale_loss = _losses(model, batch, spec.architecture, vocabulary=batches.vocabulary, head_path=head_path)
            loss = identifier_loss + config.rationale_weight * rationale_loss if rationale_loss is not None else identifier_loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            seen += len(batch["texts"])
            history.append(LossPoint(step=step + 1, loss=loss.item(), identifier_loss=identifier_loss.item(),
                                     rationale_loss=None if rationale_loss is None else rationale_loss.item()))
            advance(1, loss=loss.item())
            stopping = stop_after is not None and step + 1 - start_step >= stop_after and step + 1 < total_steps
            if stopping or ((step + 1) % config.checkpoint_every == 0 and step + 1 < total_steps):
                _save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, history, config)
            if stopping:
                return None
    seconds = time.perf_counter() - started

    model.eval()
    if config.lora is not None:
        model = model.merge_and_unload()
    from ssi_plugin.generation.generator import build_trie

    trie = build_trie(tokenizer, trie_pairs(examples))
    _save_generator(out, model=model, tokenizer=tokenizer, spec=spec, trie=trie)
    report = TrainingReport(
        out=str(out), examples=len(examples), images=trie.index.image_count, steps=total_steps, epochs=epochs,
        seconds=round(seconds, 2), examples_per_second=round(seen / seconds, 2) if seconds else 0.0,
        resumed_from_step=start_step, final_identifier_loss=_tail_mean(history), history=history, curves=CURVES,
    )
    with writing(out):
        plot_losses(history, out / CURVES, title=f"{config.base} ({config.identifier_kind}, lambda={config.rationale_weight})")
        (out / REPORT).write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
    return report


def _save_generator(out: Path, **parts: Any) -> None:
    """``save_folder``, with a disk that is full or read-only named as such (safetensors reports it as its own error)."""
    from safetensors import SafetensorError

    from ssi_plugin.generation.generator import save_folder

    with writing(out):
        try:
            save_folder(out, **parts)
        except SafetensorError as exc:
            raise OutputUnwritable(out, str(exc)) from None


def _prepare_out(out: Path, config: TrainingConfig, *, resume: bool, overwrite: bool) -> int:
    """The step to start from; refuses to clobber a finished model or a foreign checkpoint unless told."""
    checkpoint = out / CHECKPOINT
    if overwrite:
        shutil.rmtree(out, ignore_errors=True)
    elif (out / SPEC_FILE).is_file() and not checkpoint.exists():
        raise ConfigError(f"{out} already holds a trained generator; pass --overwrite to train again")
    if checkpoint.exists():
        state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        if not resume:
            raise ConfigError(f"{out} holds an unfinished run (step {state['step']}); resume it or pass --overwrite")
        if TrainingConfig.model_validate(state["config"]) != config:
            raise ConfigError(f"the checkpoint in {out} was made with other settings; use them or pass --overwrite")
        return int(state["step"])
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    return 0


def load_for_training(config: TrainingConfig) -> tuple[Any, Any, GeneratorSpec]:
    from ssi_plugin.generation.models import load_base
    from ssi_plugin.generation.spec import (
        architecture_of,
        end_token_of,
        library_versions,
        tokenizer_fingerprint,
    )

    model, tokenizer = load_base(config.base, decoder_layers=config.decoder_layers)
    spec = GeneratorSpec(
        architecture=architecture_of(model),
        identifier_kind=config.identifier_kind,
        end_token_id=end_token_of(tokenizer),
        max_query_tokens=config.max_query_tokens,
        max_identifier_tokens=config.max_identifier_tokens,
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        library_versions=library_versions(),
    )
    if config.lora is not None:
        peft = _peft()
        task = peft.TaskType.SEQ_2_SEQ_LM if spec.architecture == "seq2seq" else peft.TaskType.CAUSAL_LM
        model = peft.get_peft_model(model, peft.LoraConfig(task_type=task, r=config.lora.r, lora_alpha=config.lora.alpha,
                                                           lora_dropout=config.lora.dropout,
                                                           target_modules=config.lora.target_modules))
    return model, tokenizer, spec


def _peft() -> Any:
    """The peft library, which LoRA training needs and the ``[lora]`` extra installs."""
    with requires_extra("lora", "LoRA fine-tuning (--lora)"):
        import peft
    return peft


def _parameter_groups(model: Any, architecture: str, config: TrainingConfig) -> list[dict[str, Any]]:
    """Trainable parameters with their learning rates: a seq2seq encoder at ``encoder_learning_rate`` (frozen at 0)."""
    rate = config.encoder_learning_rate
    encoder = {id(p) for p in model.get_encoder().parameters()} if architecture == "seq2seq" and rate is not None else set()
    if rate == 0:
        for parameter in model.get_encoder().parameters():
            parameter.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if id(p) not in encoder], "lr": config.learning_rate}]
    if rate:
        groups.append({"params": [p for p in trainable if id(p) in encoder], "lr": rate})
    return [group for group in groups if group["params"]]


class _Batches:
    """Tokenized examples, served in a seeded order per epoch."""

    def __init__(self, examples: list[TrainingExample], tokenizer: Any, spec: GeneratorSpec, config: TrainingConfig) -> None:
        from ssi_plugin.generation.spec import encode_identifiers

        self.config = config
        self.tokenizer, self.spec = tokenizer, spec
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else spec.end_token_id
        end = spec.end_token_id
        identifiers = encode_identifiers(tokenizer, [e.identifier for e in examples])
        use_rationale = config.rationale_weight > 0
        rationales = tokenizer([e.rationale or "" for e in examples], add_special_tokens=False)["input_ids"] if use_rationale else None
        self.rows: list[tuple[str, list[int], int]] = []
        for n, example in enumerate(examples):
            target = [*identifiers[n][: config.max_identifier_tokens], end]
            identifier_length = len(target)
            if rationales is not None and example.rationale:
                target += [*rationales[n][: config.max_rationale_tokens], end]
            self.rows.append((example.text, target, identifier_length))
        self.vocabulary = sorted({token for row in self.rows for token in row[1]})
        """Every token of every target: the output layer scores only these during training."""

    def __len__(self) -> int:
        return (len(self.rows) + self.config.batch_size - 1) // self.config.batch_size

    def batch(self, epoch: int, index: int) -> dict[str, Any]:
        import torch

        order = torch.randperm(len(self.rows), generator=torch.Generator().manual_seed(self.config.seed * 1000 + epoch))
        size = self.config.batch_size
        rows = [self.rows[i] for i in order[index * size : (index + 1) * size].tolist()]
        texts = [r[0] for r in rows]
        if self.config.word_dropout:
            rng = random.Random(f"{self.config.seed}/{epoch}/{index}")  # a resumed run drops the same words
            texts = [_drop_words(text, self.config.word_dropout, rng) for text in texts]
        # Tokenized per batch (a fraction of a millisecond): with word dropout the text differs every time.
        prompts = [prompt_ids(self.tokenizer, self.spec, text)[0] for text in texts]
        return {"texts": texts, "prompts": prompts, "targets": [r[1] for r in rows],
                "identifier_lengths": [r[2] for r in rows], "pad": self.pad}


def _drop_words(text: str, chance: float, rng: random.Random) -> str:
    """``text`` without each of its words at ``chance``; one word stays when all would go, and a text of no words stays."""
    words = text.split()
    if not words:
        return text
    kept = [word for word in words if rng.random() >= chance]
    return " ".join(kept or [rng.choice(words)])


def _pad(rows: list[list[int]], value: int) -> Any:
    import torch

    width = max(map(len, rows))
    return torch.tensor([row + [value] * (width - len(row)) for row in rows])


def _losses(model: Any, batch: dict[str, Any], architecture: str, *, vocabulary: list[int], head_path: str) -> tuple[Any, Any]:
    """Mean cross-entropy over identifier tokens, and over rationale tokens (None when the batch has none).

    The softmax runs over ``vocabulary`` (the tokens of all targets), not the whole vocabulary.
    """
    import torch

    from ssi_plugin.generation.constraint import output_restricted_to

    prompts, targets, pad = batch["prompts"], batch["targets"], batch["pad"]
    columns = torch.tensor(vocabulary)
    position = torch.full((max(vocabulary) + 1,), -100, dtype=torch.long)
    position[columns] = torch.arange(len(vocabulary))
    with output_restricted_to(model, columns, path=head_path):
        if architecture == "seq2seq":
            start = model.config.decoder_start_token_id
            labels = _pad(targets, -100)
            logits = model(input_ids=_pad(prompts, pad), attention_mask=_pad([[1] * len(p) for p in prompts], 0),
                           decoder_input_ids=_pad([[start, *t[:-1]] for t in targets], pad)).logits
            offset = [0] * len(targets)
        else:
            sequences = [p + t for p, t in zip(prompts, targets, strict=True)]
            input_ids = _pad(sequences, pad)
            attention = _pad([[1] * len(s) for s in sequences], 0)
            labels = _pad([[-100] * len(p) + t for p, t in zip(prompts, targets, strict=True)], -100)[:, 1:]
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
            offset = [len(p) - 1 for p in prompts]
    targets_at = torch.where(labels.ne(-100), position[labels.clamp(min=0)], -100)
    token_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets_at.reshape(-1),
                                                   ignore_index=-100, reduction="none").view(labels.shape)
    identifier_mask = torch.zeros_like(labels, dtype=torch.bool)
    for row, (start, length) in enumerate(zip(offset, batch["identifier_lengths"], strict=True)):
        identifier_mask[row, start : start + length] = True
    rationale_mask = labels.ne(-100) & ~identifier_mask
    identifier_loss = token_loss[identifier_mask].mean()
    rationale_loss = token_loss[rationale_mask].mean() if rationale_mask.any() else None
    return identifier_loss, rationale_loss


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, history: list[LossPoint], config: TrainingConfig) -> None:
    import torch
    from safetensors.torch import save

    partial = folder.with_name(folder.name + ".partial")
    trainable = {name: p.detach().contiguous().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizer_state = io.BytesIO()  # serialized in memory, so a full disk is a plain OSError of the write below
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()},
               optimizer_state)
    state = {"step": history[-1].step, "config": config.model_dump(mode="json"),
             "history": [point.model_dump() for point in history]}
    with writing(partial):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        (partial / "weights.safetensors").write_bytes(save(trainable))
        (partial / "optimizer.pt").write_bytes(optimizer_state.getbuffer())
        (partial / "state.json").write_text(json.dumps(state), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)


def _load_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any) -> list[LossPoint]:
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(folder / "weights.safetensors"))
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            parameters[name].copy_(value)
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"])
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    return [LossPoint.model_validate(point) for point in state["history"]]


def _tail_mean(history: list[LossPoint], window: int = 20) -> float:
    tail = history[-window:]
    return round(sum(point.identifier_loss for point in tail) / len(tail), 4) if tail else float("nan")


def plot_losses(history: list[LossPoint], path: Path, *, title: str) -> None:
    """Loss curves (total, identifier, rationale) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    steps = [point.step for point in history]
    axes.plot(steps, [point.loss for point in history], label="total", linewidth=1)
    axes.plot(steps, [point.identifier_loss for point in history], label="identifier", linewidth=1)
    rationale = [(point.step, point.rationale_loss) for point in history if point.rationale_loss is not None]
    if rationale:
        axes.plot(*zip(*rationale, strict=True), label="rationale", linewidth=1)
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy")
    axes.set_yscale("log")
    axes.set_title(title, fontsize=9)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
