"""The token-level constraint of decoding, and output layers restricted to the tokens identifiers use.

``AllowedColumns`` says which tokens may follow a prefix of identifier tokens;
``log_softmax_over`` renormalises a model's scores over just those. Both serve
``constrained_beam_search`` (what ``Generator`` runs) and ``TrieConstraint``,
the same constraint as a Hugging Face ``LogitsProcessor`` for ``generate`` with
causal models (the prompt is the first ``prompt_length`` positions) and
encoder-decoders (``prompt_length=1``: the decoder start token).

A ``Generator`` puts ``HiddenStatesHead`` in place of its model's output layer
and projects the hidden states itself with a ``TokenProjection`` of the tokens
its current trie uses: the trie can then change under running queries (each
query keeps the projection it started with) without touching the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import torch
from transformers import LogitsProcessor

from ssi_plugin.errors import ModelError
from ssi_plugin.trie import IdentifierTrie, TrieView, encode_tokens


class AllowedColumns:
    """Which output columns may follow an encoded prefix of identifier tokens.

    A column is a token's position in ``vocabulary`` (an output layer restricted
    to the trie's tokens), or the token id itself when ``vocabulary`` is None
    (a full-vocabulary output layer). The children of heavy trie nodes, asked
    for at every query, are kept as tensors.
    """

    def __init__(self, trie: TrieView, *, vocab_size: int, vocabulary: np.ndarray | None = None) -> None:
        if len(trie) == 0:
            raise ModelError("the identifier trie is empty: index images (or rebuild the trie) before decoding")
        largest = int(trie.vocabulary.max())
        if largest >= vocab_size:
            raise ModelError(
                f"the trie uses token {largest}, outside the model's vocabulary ({vocab_size} tokens): "
                "it was built with another tokenizer; rebuild it"
            )
        self.trie = trie
        self.vocabulary = vocabulary
        self.count = vocab_size if vocabulary is None else len(vocabulary)
        """How many columns there are."""
        self._heavy: dict[str, torch.Tensor] = {}

    def __call__(self, prefix: str, *, first: bool) -> torch.Tensor | None:
        """Allowed columns after ``prefix``; None when the prefix left the trie."""
        cached = self._heavy.get(prefix)
        if cached is not None:
            return cached
        children = self.trie.children(prefix)
        if not children:
            if first:
                raise ModelError("the identifier trie allows no first token")
            return None
        columns = torch.tensor(children if self.vocabulary is None else np.searchsorted(self.vocabulary, children), dtype=torch.long)
        if len(children) > self.trie.heavy_threshold:
            self._heavy[prefix] = columns
        return columns

    def token(self, column: int) -> int:
        return column if self.vocabulary is None else int(self.vocabulary[column])


def log_softmax_over(scores: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``log p`` of each ``scores[rows[i], columns[i]]`` normalised over its row's listed entries only.

    A step costs the allowed tokens, not the vocabulary; a token the trie forces gets 0.
    """
    kept = scores[rows, columns].float()
    top = torch.full((scores.shape[0],), float("-inf")).scatter_reduce(0, rows, kept, "amax")
    mass = torch.zeros(scores.shape[0]).index_add_(0, rows, (kept - top[rows]).exp())
    return kept - (top + mass.log())[rows]


class TrieConstraint(LogitsProcessor):
    """Allow only tokens that keep each beam on a path of the identifier trie, as log-probabilities over them.

    For Hugging Face ``generate`` (``logits_processor=[TrieConstraint(...)]``);
    ``Generator`` decodes with ``constrained_beam_search``, which needs fewer steps.
    Each row becomes ``log p(token | prefix, trie)``: the model's scores
    renormalised over the tokens the trie allows (a token the trie forces costs
    nothing), so a finished beam's summed score is the log-probability of its
    identifier among those in the trie, whatever its length. The processor
    works on raw logits (greedy search) and on log-probabilities (beam search)
    alike.

    A row that cannot continue gets ``-inf`` for every token: a beam whose
    identifier is already closed (beam search refills its beams with finished
    sequences when too few live ones exist), and a beam that left the trie (it
    took a ``-inf`` token for the same reason). Such a beam never ends with a
    finite score, so it can neither fill the finished hypotheses nor stop the
    search early.
    """

    def __init__(self, trie: IdentifierTrie | TrieView, *, prompt_length: int, vocab_size: int) -> None:
        if prompt_length < 0:
            raise ModelError(f"prompt_length must be >= 0, got {prompt_length}")
        view = trie if isinstance(trie, TrieView) else TrieView(trie)
        self._columns = AllowedColumns(view, vocab_size=vocab_size)
        self.trie = view
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows: list[torch.Tensor] = []
        columns: list[torch.Tensor] = []
        end = self.trie.end_token_id
        for row, generated in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if end in generated:  # closed: nothing may follow
                continue
            allowed = self._columns(encode_tokens(generated), first=not generated)
            if allowed is not None:
                rows.append(torch.full((len(allowed),), row, dtype=torch.long))
                columns.append(allowed)
        constrained = torch.full_like(scores, float("-inf"))
        if rows:
            row_of, column_of = torch.cat(rows), torch.cat(columns)
            constrained[row_of, column_of] = log_softmax_over(scores, row_of, column_of).to(scores.dtype)
        return cast(torch.FloatTensor, constrained)  # LogitsProcessor's signature; full_like keeps the dtype of scores


class HiddenStatesHead(torch.nn.Module):
    """In place of a model's output layer: the model returns its last hidden states (see ``TokenProjection``)."""

    original: torch.nn.Linear

    def __init__(self, head: torch.nn.Linear) -> None:
        super().__init__()
        object.__setattr__(self, "original", head)  # not a submodule: its weights are not this module's

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden


class TokenProjection:
    """The output layer for ``token_ids`` only: column ``i`` scores token ``token_ids[i]``.

    Constrained decoding renormalises over the tokens the trie allows, so the
    other tokens' scores never matter; with a 30k vocabulary and a small
    decoder their projection would be most of a step. A copy of the rows is
    kept: the weights do not change at query time.
    """

    def __init__(self, head: torch.nn.Linear, token_ids: torch.Tensor) -> None:
        self.weight = head.weight.detach()[token_ids].clone()
        self.bias = head.bias.detach()[token_ids].clone() if head.bias is not None else None

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(hidden, self.weight, self.bias)


class TargetVocabularyHead(torch.nn.Module):
    """Training-time output layer: logits of ``token_ids`` only (column ``i`` scores ``token_ids[i]``).

    It reads the live weights of ``head`` (gradients reach them, tied
    embeddings included). A softmax over the tokens that occur in the targets
    is what trie-constrained decoding normalises over (the trie's tokens are
    among them), and it spares the full-vocabulary projection and softmax that
    otherwise dominate a training step of a small decoder.
    """

    original: torch.nn.Linear
    token_ids: torch.Tensor

    def __init__(self, head: torch.nn.Linear, token_ids: torch.Tensor) -> None:
        super().__init__()
        object.__setattr__(self, "original", head)  # not a submodule: parameter names stay those of the model
        self.register_buffer("token_ids", token_ids, persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = self.original.bias[self.token_ids] if self.original.bias is not None else None
        return torch.nn.functional.linear(hidden, self.original.weight[self.token_ids], bias)


@contextmanager
def output_restricted_to(model: Any, token_ids: torch.Tensor, *, path: str) -> Iterator[None]:
    """Within the block, the output layer at ``path`` scores ``token_ids`` only (see ``TargetVocabularyHead``)."""
    head = model.get_submodule(path)
    set_output_layer(model, TargetVocabularyHead(head, token_ids), path=path)
    try:
        yield
    finally:
        set_output_layer(model, head, path=path)


def set_output_layer(model: Any, layer: torch.nn.Module, *, path: str) -> None:
    """Put ``layer`` at ``path`` (from ``output_layer_path``) inside ``model``."""
    parent_name, _, attribute = path.rpartition(".")
    setattr(model.get_submodule(parent_name), attribute, layer)


def output_layer_path(model: Any) -> str:
    """Where the model's output projection lives, e.g. ``decoder.cls.predictions.decoder``."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear | HiddenStatesHead):
        raise ModelError(f"cannot restrict an output layer of type {type(head).__name__}")
    return next(name for name, module in model.named_modules() if module is head)
