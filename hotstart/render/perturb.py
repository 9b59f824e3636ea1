"""Perturbed input for robustness tests (`hotstart eval --noise --stroke-dropout --confusable-share`):
noisy glyphs, glyphs with pieces of their strokes gone, and characters swapped for look-alikes.

Our reading where the issue leaves room:
- noise is Gaussian, added to every glyph's ink coverage and clipped to [0, 1]; one draw per character
  and evaluation, so a character looks the same wherever it appears (as a glyph bank is);
- stroke dropout blanks each inked pixel of a glyph with the given probability: at the thumbnail sizes
  trained here (8x8) a stroke is a pixel or two wide, so a pixel of ink is a piece of a stroke;
- a character's look-alike is the other vocabulary character whose glyph, drawn at 32x32 in the same
  font, is nearest by cosine similarity (characters that draw the same pixels excluded); a share of
  the input positions holding a character is swapped for its look-alike, while the targets stay, so a
  model is asked to read through a misprint. An index model reads the swapped ID, a vision model the
  swapped glyph. Unicode's confusables list is not used: its entries are Latin, Greek and Cyrillic
  homoglyphs for the most part, not Han look-alikes.
Noise and stroke dropout touch glyphs only, so an index model is immune to them by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..data.prepared import SPECIALS, Vocab
from ..errors import HotStartError
from .glyph import RenderConfig

LOOKALIKE_RES = 32
"""Resolution at which look-alikes are judged: fine enough to tell strokes apart, whatever a model reads."""


@dataclass
class Perturbation:
    """How `hotstart eval` perturbs what a model reads."""

    noise: float = 0.0
    """Standard deviation of Gaussian noise added to each glyph's pixels (ink coverage 0..1)."""
    stroke_dropout: float = 0.0
    """Probability that an inked pixel of a glyph is blanked."""
    confusable_share: float = 0.0
    """Share of input characters replaced by their look-alike."""
    seed: int = 0

    def validate(self) -> None:
        """Raise HotStartError naming the first bad value."""
        for name, value, ok, allowed in (
            ("--noise", self.noise, 0 <= self.noise <= 10, "from 0 to 10 (ink coverage units)"),
            ("--stroke-dropout", self.stroke_dropout, 0 <= self.stroke_dropout <= 1, "from 0 to 1"),
            ("--confusable-share", self.confusable_share, 0 <= self.confusable_share <= 1, "from 0 to 1"),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
                raise HotStartError(f"{name} must be a number {allowed}, got {value}")

    @property
    def touches_glyphs(self) -> bool:
        return self.noise > 0 or self.stroke_dropout > 0


def perturb_glyphs(glyphs: torch.Tensor, perturbation: Perturbation) -> torch.Tensor:
    """(V, R, R) glyph bank -> the same with stroke dropout, then noise, drawn from the perturbation's seed."""
    generator = torch.Generator().manual_seed(perturbation.seed)
    out = glyphs.float().clone()
    if perturbation.stroke_dropout > 0:
        drop = torch.rand(out.shape, generator=generator) < perturbation.stroke_dropout
        out[drop & (out > 0)] = 0.0
    if perturbation.noise > 0:
        out = (out + perturbation.noise * torch.randn(out.shape, generator=generator)).clamp(0.0, 1.0)
    return out


def lookalikes(vocab: Vocab, render: RenderConfig) -> torch.Tensor:
    """(V,) each ID's look-alike ID: the other character whose glyph (drawn at LOOKALIKE_RES in the
    render's font) is nearest by cosine; specials and characters that draw nothing map to themselves."""
    from dataclasses import replace

    from ..models.hotstart_lm import glyph_bank

    bank = glyph_bank(vocab.tokens, SPECIALS, replace(render, res=LOOKALIKE_RES, crop=1.0), progress=False)
    flat = bank.flatten(1).float()
    norms = flat.norm(dim=1)
    table = torch.arange(len(vocab))
    drawn = torch.nonzero(norms > 0).squeeze(1)
    drawn = drawn[drawn >= len(SPECIALS)]
    if len(drawn) < 2:
        return table
    unit = flat[drawn] / norms[drawn, None]
    for start in range(0, len(drawn), 1024):  # (chunk, V') cosine similarities, a chunk at a time
        cosine = unit[start : start + 1024] @ unit.T
        cosine[cosine > 1 - 1e-6] = -2.0  # itself, and characters that draw the very same pixels
        table[drawn[start : start + 1024]] = drawn[cosine.argmax(1)]
    return table


def swap_lookalikes(sequences: torch.Tensor, table: torch.Tensor, share: float, seed: int = 0) -> torch.Tensor:
    """(N, L) sequences -> what the model reads: a `share` of the positions holding a character (not a
    special) replaced by its look-alike, drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    pick = (torch.rand(sequences.shape, generator=generator) < share) & (sequences >= len(SPECIALS))
    return torch.where(pick, table[sequences], sequences)
