"""The index baseline of the pixel encoder: a character-level BERT (`transformers`' BertForMaskedLM).

PIXEL-M4's encoder reads a line as patches of pixels; this one reads the same characters as IDs of the
prepared corpus's vocabulary, with the same encoder shape (MAE_SIZES: width, depth, heads, a 4x MLP),
and learns by BERT's masked-language-model objective: 15% of the positions chosen, of those 80% shown
as [MASK], 10% as a random character and 10% unchanged, and cross-entropy on the chosen ones. Pooled
over its last hidden states it is the "index" row of the fine-tuning table (tasks/classification.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from ..config import flag
from ..data.prepared import PAD_ID
from ..errors import HotStartError
from .mae import MAE_SIZES

IGNORE = -100
"""Label of a position the loss skips (transformers' convention)."""


@dataclass
class CharBertConfig:
    """A character-level BERT the size of an MAE encoder."""

    size: str = field(default="small-cpu", metadata=flag(by_hand=True))
    """tiny | small-cpu | base: the encoder of the MAE size of the same name."""
    vocab_size: int = field(default=0, metadata=flag(cli=False))
    """The corpus's vocabulary; 0 until a run fills it. [MASK] is one more ID after it."""
    max_positions: int = field(default=0, metadata=flag(cli=False))
    """Longest sequence (the corpus's seq_len; 0 until a run fills it)."""
    mask_prob: float = 0.15
    """Share of positions the loss is taken on (BERT: 15%)."""
    dropout: float = field(default=0.1, metadata=flag(check="dropout_rate"))
    """Dropout in the blocks and on attention (BERT's default)."""

    @property
    def mask_id(self) -> int:
        """The [MASK] token: the ID after the corpus's vocabulary."""
        return self.vocab_size

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if self.size not in MAE_SIZES:
            raise HotStartError(f"unknown size '{self.size}'; choose one of {', '.join(MAE_SIZES)}")
        if not 0 < self.mask_prob < 1:
            raise HotStartError(f"mask_prob must be between 0 and 1, got {self.mask_prob}")

    def bert_config(self) -> BertConfig:
        """The `transformers` config this builds: the MAE encoder's shape over a table of characters."""
        s = MAE_SIZES[self.size]
        return BertConfig(
            vocab_size=self.vocab_size + 1, hidden_size=s.hidden_size, num_hidden_layers=s.num_hidden_layers,
            num_attention_heads=s.num_attention_heads, intermediate_size=4 * s.hidden_size,
            max_position_embeddings=self.max_positions, type_vocab_size=1, pad_token_id=PAD_ID,
            hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout, attn_implementation="sdpa",
        )


def bert_masking(ids: np.ndarray, cfg: CharBertConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BERT's corruption of one (T,) row: the inputs (80% [MASK], 10% a random character, 10% kept at the
    chosen positions) and the labels (the original character there, IGNORE elsewhere). At least one
    position is chosen; padding never is."""
    candidates = np.flatnonzero(ids != PAD_ID)
    n = max(1, round(cfg.mask_prob * len(candidates))) if len(candidates) else 0
    chosen = rng.choice(candidates, size=n, replace=False)
    labels = np.full_like(ids, IGNORE)
    labels[chosen] = ids[chosen]
    inputs = ids.copy()
    action = rng.random(n)
    inputs[chosen[action < 0.8]] = cfg.mask_id
    randomised = chosen[(action >= 0.8) & (action < 0.9)]
    inputs[randomised] = rng.integers(3, cfg.vocab_size, size=len(randomised))  # a real character, not a special
    return inputs, labels


class CharBert(nn.Module):
    """BertForMaskedLM over character IDs: (B, T) ids in, the loss on the labelled positions out."""

    def __init__(self, cfg: CharBertConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.bert = BertForMaskedLM(cfg.bert_config())

    def forward(self, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cross-entropy over the labelled positions, and their (n_labelled, V+1) logits.

        BertForMaskedLM's own forward scores every position against the whole vocabulary; only the
        labelled 15% count, so the head runs on those alone (same loss, several times less work)."""
        hidden = self.bert.bert(input_ids=ids, attention_mask=(ids != PAD_ID).long()).last_hidden_state
        chosen = labels != IGNORE
        logits = self.bert.cls(hidden[chosen])
        return nn.functional.cross_entropy(logits.float(), labels[chosen]), logits

    def no_weight_decay(self) -> set[str]:
        """The embedding tables (and the output layer tied to the word table), as for HotStart's tables."""
        return {f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)}
