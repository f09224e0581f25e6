"""Trie-constrained decoding as a Hugging Face ``LogitsProcessor``, and a head restricted to the trie's tokens.

The processor asks the trie which tokens may follow each beam's generated
prefix, masks every other token to ``-inf`` and renormalises over the rest. It works for causal models
(the prompt is the first ``prompt_length`` positions) and encoder-decoders
(``prompt_length=1``: the decoder start token, whatever id the config gives).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import LogitsProcessor

from ssi_plugin.errors import ModelError
from ssi_plugin.trie import IdentifierTrie, encode_tokens


class TrieConstraint(LogitsProcessor):
    """Allow only tokens that keep each beam on a path of the identifier trie, as log-probabilities over them.

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
    search early. A live prefix with no allowed token means the trie does not
    match the model's vocabulary: that is a ``ModelError``.
    """

    def __init__(self, trie: IdentifierTrie, *, prompt_length: int, vocab_size: int) -> None:
        if prompt_length < 0:
            raise ModelError(f"prompt_length must be >= 0, got {prompt_length}")
        if len(trie) == 0:
            raise ModelError("the identifier trie is empty: index images (or rebuild the trie) before decoding")
        if trie.end_token_id >= vocab_size:
            raise ModelError(f"the trie's end token {trie.end_token_id} is outside the model's vocabulary ({vocab_size})")
        self.trie = trie
        self.prompt_length = prompt_length
        self.vocab_size = vocab_size
        self._heavy_columns: dict[str, torch.Tensor] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows: list[torch.Tensor] = []
        columns: list[torch.Tensor] = []
        end = self.trie.end_token_id
        for row, generated in enumerate(input_ids[:, self.prompt_length :].tolist()):
            if end in generated:  # closed: nothing may follow
                continue
            allowed = self._columns(generated)
            if allowed is not None:
                rows.append(torch.full((len(allowed),), row, dtype=torch.long))
                columns.append(allowed)
        constrained = torch.full_like(scores, float("-inf"))
        if not rows:
            return constrained
        # normalise over the allowed entries only: a step costs the candidates, not the vocabulary
        row_of, column_of = torch.cat(rows), torch.cat(columns)
        kept = scores[row_of, column_of].float()
        top = torch.full((scores.shape[0],), float("-inf")).scatter_reduce(0, row_of, kept, "amax")
        mass = torch.zeros(scores.shape[0]).index_add_(0, row_of, (kept - top[row_of]).exp())
        constrained[row_of, column_of] = (kept - (top + mass.log())[row_of]).to(scores.dtype)
        return constrained

    def _columns(self, generated: list[int]) -> torch.Tensor | None:
        """Allowed token ids after ``generated``; None when the prefix left the trie."""
        prefix = encode_tokens(generated)
        cached = self._heavy_columns.get(prefix)
        if cached is not None:
            return cached
        children = self.trie.tokens.children(prefix)
        if not children:
            if not generated:
                raise ModelError("the identifier trie allows no first token")
            return None
        if max(children) >= self.vocab_size:
            raise ModelError(
                f"the trie allows token {max(children)} but the model's vocabulary has {self.vocab_size} tokens: "
                "the trie was built with another tokenizer; rebuild it"
            )
        columns = torch.tensor(children, dtype=torch.long)
        if len(children) > self.trie.tokens.heavy_threshold:
            self._heavy_columns[prefix] = columns
        return columns


class RestrictedHead(torch.nn.Module):
    """An output layer that scores only ``token_ids`` and gives every other token ``-inf``.

    Decoding constrained to a trie never picks a token outside it, so scoring
    the full vocabulary at each step is wasted work; with a 30k vocabulary and a
    small decoder that projection is most of a step. Probabilities are
    normalised over the kept tokens, which leaves ranking among valid
    identifiers nearly unchanged (measured in ``benchmarks/generation.py``).
    """

    def __init__(self, head: torch.nn.Linear, token_ids: torch.Tensor) -> None:
        super().__init__()
        object.__setattr__(self, "original", head)  # not a submodule: its weights are not this module's
        self.vocab_size = head.out_features
        self.register_buffer("token_ids", token_ids, persistent=False)
        self.register_buffer("weight", head.weight.detach()[token_ids].clone(), persistent=False)
        bias = head.bias.detach()[token_ids].clone() if head.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = hidden.new_full((*hidden.shape[:-1], self.vocab_size), float("-inf"))
        logits[..., self.token_ids] = torch.nn.functional.linear(hidden, self.weight, self.bias)
        return logits


class TargetVocabularyHead(torch.nn.Module):
    """Training-time output layer: logits of ``token_ids`` only (column ``i`` scores ``token_ids[i]``).

    It reads the live weights of ``head`` (gradients reach them, tied
    embeddings included). A softmax over the tokens that occur in the targets
    is what trie-constrained decoding normalises over (the trie's tokens are
    among them), and it spares the full-vocabulary projection and softmax that
    otherwise dominate a training step of a small decoder.
    """

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
    if not isinstance(head, torch.nn.Linear | RestrictedHead):
        raise ModelError(f"cannot restrict an output layer of type {type(head).__name__}")
    return next(name for name, module in model.named_modules() if module is head)


def trie_token_ids(trie: IdentifierTrie) -> torch.Tensor:
    """Every token that occurs in some identifier of the trie (the end token included)."""
    return torch.from_numpy(trie.tokens.vocabulary.astype("int64"))
