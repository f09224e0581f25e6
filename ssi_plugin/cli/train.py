"""``ssi-plugin train``: fine-tune the generator on text -> identifier (+ rationale) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ssi_plugin.cli._context import engine_flags, engine_options, log


@click.command("train")
@click.option("--index", help="Train on the captions and identifiers this index holds (the generator memorises its index).")
@click.option("--data", "data", type=click.Path(path_type=Path), multiple=True,
              help="JSONL of text/captions -> identifier (+ rationale), e.g. an annotation file. Repeatable.")
@click.option("--queries", type=click.Path(path_type=Path), multiple=True, help="Extra query -> identifier JSONL. Repeatable.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Generator folder to write (default with --index: the index's generator, used by search and serve).",
)
@click.option("--base", default="minilm-encoder-decoder", show_default=True,
              help="Base model: the embedded default, or a local Hugging Face folder (causal or encoder-decoder).")
@click.option("--decoder-layers", type=int, help="Decoder depth of the default base [default: the trainer's].")
@click.option("--rationale-weight", "--lambda", "rationale_weight", type=float,
              help="Weight of the rationale tokens (Rationale-Guided Supervision); 0 turns it off [default: the trainer's].")
@click.option("--numeric-ids", is_flag=True, help="GRACE-style baseline: learn arbitrary numeric ids instead of SSIs.")
@click.option("--epochs", type=int, help="Training epochs [default: from the corpus size, about 2,400 examples seen].")
@click.option("--batch-size", type=int, help="Examples per step [default: the trainer's].")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, help="Peak learning rate [default: the trainer's].")
@click.option("--encoder-learning-rate", "encoder_learning_rate", type=float,
              help="Peak learning rate of a pretrained encoder; 0 freezes it [default: the trainer's].")
@click.option("--word-dropout", type=click.FloatRange(0, 1, max_open=True),
              help="Chance of leaving each word of a training text out of a batch [default: the trainer's].")
@click.option("--lora", is_flag=True, help="Train LoRA adapters (merged into the saved model) instead of all weights.")
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=int, default=200, show_default=True, help="Steps between checkpoints.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace whatever --out holds.")
@engine_options
@click.pass_context
def train_command(ctx: click.Context, index: str | None, data: tuple[Path, ...], queries: tuple[Path, ...], out: Path | None,
                  base: str, decoder_layers: int | None, rationale_weight: float | None, numeric_ids: bool, epochs: int | None,
                  batch_size: int | None, learning_rate: float | None, encoder_learning_rate: float | None,
                  word_dropout: float | None, lora: bool, lora_r: int, seed: int, checkpoint_every: int, resume: bool,
                  overwrite: bool) -> None:
    """Fine-tune a generator; writes model, tokenizer, trie, loss curves (PNG) and a report to --out."""
    from pydantic import ValidationError

    from ssi_plugin import SSIIndex
    from ssi_plugin.errors import ConfigError, describe_validation_error
    from ssi_plugin.generation.examples import read_examples
    from ssi_plugin.generation.training import LoraSettings, TrainingConfig, train

    try:
        chosen: dict[str, Any] = {"decoder_layers": decoder_layers, "rationale_weight": rationale_weight, "batch_size": batch_size,
                  "learning_rate": learning_rate, "encoder_learning_rate": encoder_learning_rate, "word_dropout": word_dropout}
        config = TrainingConfig(
            base=base, identifier_kind="numeric" if numeric_ids else "ssi", epochs=epochs,
            **{name: value for name, value in chosen.items() if value is not None},
            lora=LoraSettings(r=lora_r) if lora else None, seed=seed,
            checkpoint_every=checkpoint_every,
        )
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    files = (*data, *queries)
    if index:
        with SSIIndex.connect(index=index, generator_dir=out, log=log, **engine_flags(ctx)) as source:
            report = source.train(config=config, data=files, resume=resume, overwrite=overwrite)
            out = source.generator_dir
    else:
        if not data:
            raise ConfigError("give --index (train on an index) or --data (training files)")
        if out is None:
            raise ConfigError("--out is needed when training from --data alone")
        examples = list(read_examples(*files))
        log(f"Training {base} on {len(examples)} examples -> {out}")
        trained = train(examples, out, config, resume=resume, overwrite=overwrite)
        assert trained is not None  # train returns None only when told to stop early (stop_after)
        report = trained
    click.echo(f"Trained {report.steps} steps in {report.seconds:.0f} s ({report.examples_per_second:.1f} examples/s); "
               f"identifier loss {report.final_identifier_loss:.3f}; {report.images} images in the trie.")
    click.echo(f"Loss curves: {out / report.curves}")
