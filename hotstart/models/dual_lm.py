"""DualGPT (shared/papers/pixelgpt-dualgpt.md): one decoder that learns from rendered lines and from
character IDs, and from the two paired.

    text    ids[:-1] -> character embedding -> decoder -> character head -> ids[1:]   (cross-entropy)
    pixels  a rendered line, as PixelGPT (pixel_lm.py): the next patch's pixels           (MSE or Bernoulli)
    pair    [start] + a line's patches + ids[:-1] -> decoder -> character head -> ids  (cross-entropy:
            the text read from its own picture, then continued)

Our reading where the paper summary is silent:
- a training batch is split by sequence, in a fixed order, into text, pixel and pair sequences with
  the shares the config gives (the paper's data mix is text:image:pair = 4:4:2);
- the batch's loss is the shares' weighted mean of the three kinds' mean losses;
- a pair's line is cut to the batch's longest, so its text follows a line's end patch and, for the
  shorter lines of the batch, a few blank patches (the same for every position, so it stays causal);
- the text path predicts characters 1..L-1 of a sequence from those before, exactly as HotStart's
  index LM does (training/evaluate.py), so its accuracy is on HotStart's scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import flag
from ..data.prepared import PAD_ID
from ..errors import HotStartError
from .pixel_lm import PixelLM, PixelLMConfig


@dataclass
class DualLMConfig:
    """A pixel LM with a character embedding and head on the same decoder."""

    pixel: PixelLMConfig = field(default_factory=PixelLMConfig)
    """The decoder, line geometry and pixel head (pixel_lm.py)."""
    pixel_text_ratio: float = 1.0
    """Pixel sequences per text sequence outside the pairs (the paper's 4:4 = 1)."""
    pair_share: float = 0.2
    """Share of each batch given as pairs, a line then its text (the paper's 2 of 10)."""
    vocab_size: int = field(default=0, metadata=flag(cli=False))
    """Characters of the corpus (set from it)."""
    seq_len: int = field(default=0, metadata=flag(cli=False))
    """Characters per sequence (set from the corpus): the pairs' text part."""

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        self.pixel.validate()
        if not (self.pixel_text_ratio >= 0 and math.isfinite(self.pixel_text_ratio)):
            raise HotStartError(f"--pixel-text-ratio must be a finite number >= 0, got {self.pixel_text_ratio}")
        if not 0 <= self.pair_share <= 1:
            raise HotStartError(f"--pair-share must be from 0 to 1, got {self.pair_share}")

    def shares(self) -> dict[str, float]:
        """Share of a batch's sequences per kind: text, pixels, pair."""
        rest = 1.0 - self.pair_share
        pixels = rest * self.pixel_text_ratio / (1.0 + self.pixel_text_ratio)
        return {"text": rest - pixels, "pixels": pixels, "pair": self.pair_share}

    def split(self, batch: int) -> dict[str, int]:
        """Sequences per kind in a batch of `batch`: pairs and pixels rounded, text the rest."""
        shares = self.shares()
        pair = round(batch * shares["pair"])
        pixels = min(round(batch * shares["pixels"]), batch - pair)
        return {"text": batch - pair - pixels, "pixels": pixels, "pair": pair}


class DualLM(nn.Module):
    """PixelGPT's model plus a character embedding and head over the same decoder."""

    def __init__(self, cfg: DualLMConfig) -> None:
        super().__init__()
        cfg.validate()
        if cfg.vocab_size < 1 or cfg.seq_len < 2:
            raise HotStartError("a DualLM needs the corpus's vocab_size and seq_len; build it through its objective")
        self.config = cfg
        self.pixel = PixelLM(cfg.pixel, extra_positions=cfg.seq_len)
        width = cfg.pixel.decoder_config().n_embd
        self.wte = nn.Embedding(cfg.vocab_size, width)
        self.lm_head = nn.Linear(width, cfg.vocab_size, bias=False)
        nn.init.normal_(self.wte.weight, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The pixel LM's start vector and the character embedding."""
        return {"pixel.wpe_start", "wte.weight"}

    def text_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) IDs -> (B, L-1, V) logits of characters 1..L-1."""
        h = self.pixel.decoder(inputs_embeds=self.wte(ids[:, :-1]), use_cache=False).last_hidden_state
        return self.lm_head(h)

    def pair_logits(self, patches: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(B, N, P, P[, C]) lines and (B, L) their IDs -> (B, L, V) logits of every character, the
        first predicted from the line alone."""
        positions = self.pixel.group(patches)  # (B, T, L*P*P*C)
        x = torch.cat([self.pixel.patch_embed(positions), self.wte(ids[:, :-1])], dim=1)
        start = self.pixel.wpe_start.to(x.dtype).expand(x.shape[0], 1, -1)
        h = self.pixel.decoder(inputs_embeds=torch.cat([start, x], dim=1), use_cache=False).last_hidden_state
        return self.lm_head(h[:, positions.shape[1] :])

    def forward(self, text: torch.Tensor, patches: torch.Tensor, lengths: torch.Tensor, pair_patches: torch.Tensor,
                pair_ids: torch.Tensor) -> torch.Tensor:
        """The batch's loss: each kind's mean loss weighted by its number of sequences."""
        total, count = 0.0, 0
        if len(text):
            total = total + len(text) * F.cross_entropy(self.text_logits(text).flatten(0, 1).float(), text[:, 1:].flatten(),
                                                          ignore_index=PAD_ID)
            count += len(text)
        if len(patches):
            total = total + len(patches) * self.pixel(patches, lengths)
            count += len(patches)
        if len(pair_ids):
            logits = self.pair_logits(pair_patches, pair_ids).float()
            total = total + len(pair_ids) * F.cross_entropy(logits.flatten(0, 1), pair_ids.flatten(), ignore_index=PAD_ID)
            count += len(pair_ids)
        return total / max(count, 1)
