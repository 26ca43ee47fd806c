"""The toy world's own tokenizer and text encoder.

* :func:`build_tokenizer` builds a word-level tokenizer offline with the ``tokenizers`` library (WordLevel
  model, lower-casing, whitespace pre-tokenizer, ``<pad>``/``<unk>``, fixed length) and wraps it in
  ``transformers.PreTrainedTokenizerFast`` so ``save_pretrained``/``from_pretrained`` work. It adds no
  special tokens: token ``i`` of a grammar prompt is word ``i`` (see ``PromptRecord.shape_index``).
* :class:`ToyTextEncoder` maps token ids ``[B, L]`` to ``[B, L, D]``: learned word embeddings + learned
  positions, one pre-norm transformer encoder layer (so context words can matter; padding is masked as keys),
  final LayerNorm. ``save_pretrained``/``from_pretrained`` write ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
DEFAULT_MAX_LENGTH = 24


def build_tokenizer(words: Optional[Sequence[str]] = None, max_length: int = DEFAULT_MAX_LENGTH):
    """A ``PreTrainedTokenizerFast`` over ``words`` (default: the grammar's vocabulary).

    Ids: 0 = ``<pad>``, 1 = ``<unk>``, then the words in sorted order. Calls default to padding and truncating
    to ``max_length`` (``model_max_length``)."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    if words is None:
        from .grammar import vocabulary

        words = vocabulary()
    vocab = {PAD_TOKEN: 0, UNK_TOKEN: 1}
    for w in sorted(set(w.lower() for w in words)):
        if w not in vocab:
            vocab[w] = len(vocab)
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN, model_max_length=max_length,
        padding_side="right", truncation_side="right",
    )
    return fast


def tokenize(tokenizer, prompts: Sequence[str], max_length: Optional[int] = None) -> dict[str, torch.Tensor]:
    """``{"input_ids": [B, L], "attention_mask": [B, L]}``, always padded to the full ``max_length``."""
    L = max_length or tokenizer.model_max_length
    enc = tokenizer(list(prompts), padding="max_length", truncation=True, max_length=L, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def concept_token_indices(tokenizer, prompt: str, concept_words: Sequence[str]) -> list[int]:
    """Token positions of ``prompt`` whose word is in ``concept_words`` (case-insensitive; e.g. all synonyms
    of a concept from :func:`unlearn.toyworld.grammar.synonyms`)."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][: tokenizer.model_max_length]
    toks = tokenizer.convert_ids_to_tokens(ids)
    wanted = {w.lower() for w in concept_words}
    return [i for i, t in enumerate(toks) if t in wanted]


class ToyTextEncoder(nn.Module):
    """Word embeddings + learned positions + one transformer encoder layer -> ``[B, L, dim]``."""

    config_name = "config.json"
    weights_name = "model.safetensors"

    def __init__(self, vocab_size: int, dim: int = 64, max_length: int = DEFAULT_MAX_LENGTH, num_layers: int = 1,
                 num_heads: int = 4, ff_mult: int = 2, pad_token_id: int = 0, dropout: float = 0.0):
        super().__init__()
        self.config = dict(vocab_size=vocab_size, dim=dim, max_length=max_length, num_layers=num_layers,
                           num_heads=num_heads, ff_mult=ff_mult, pad_token_id=pad_token_id, dropout=dropout)
        self.pad_token_id = pad_token_id
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_length, dim))
        nn.init.normal_(self.tok.weight, std=0.5)
        nn.init.normal_(self.pos, std=0.1)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=ff_mult * dim, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(num_layers)
        ])
        self.norm = nn.LayerNorm(dim)

    @property
    def dim(self) -> int:
        return self.config["dim"]

    @property
    def max_length(self) -> int:
        return self.config["max_length"]

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        L = input_ids.shape[1]
        if L > self.max_length:
            raise ValueError(f"sequence length {L} > max_length {self.max_length}")
        h = self.tok(input_ids) + self.pos[:, :L]
        if attention_mask is None:
            attention_mask = (input_ids != self.pad_token_id).long()
        key_pad = attention_mask == 0
        key_pad = key_pad & key_pad.logical_not().any(dim=1, keepdim=True)  # an all-pad row masks nothing
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=key_pad)
        return self.norm(h)

    # ------------------------------------------------------------------ serialisation (safetensors + JSON)
    def save_pretrained(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / self.config_name).write_text(json.dumps({"class": "ToyTextEncoder", **self.config}, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(p / self.weights_name))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "ToyTextEncoder":
        from safetensors.torch import load_file

        p = Path(path)
        cfg = json.loads((p / cls.config_name).read_text())
        cfg.pop("class", None)
        model = cls(**cfg)
        model.load_state_dict(load_file(str(p / cls.weights_name), device=str(map_location)))
        return model.eval()
