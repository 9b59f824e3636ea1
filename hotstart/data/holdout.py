"""Characters held out of training: what a model makes of characters it has never been trained on.

A share of the vocabulary's characters, drawn at random (seeded) from each of `bands` frequency bands
(the vocabulary is ordered by frequency, so a band is a run of ranks), so that rare and common
characters are held out alike. During training a held-out character never reaches the model: as an
input it becomes <unk>, as a target it is ignored, and it is left out of the softmax (our reading of
"held out": no signal of any kind, not even as a wrong answer pushed down). At evaluation a vision
model reads its glyph like any other character's; an index model can only see <unk>.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import flag
from ..errors import HotStartError
from .prepared import PAD_ID, SPECIALS, UNK_ID, Vocab


@dataclass
class HoldoutConfig:
    """Which characters a next-char run never trains on."""

    share: float = field(default=0.0, metadata=flag("holdout-share"))
    """Share of the vocabulary's characters held out (0: none)."""
    seed: int = field(default=0, metadata=flag("holdout-seed"))
    """Seed of the draw, independent of the training seed, so runs of several seeds hold out the same."""
    bands: int = field(default=5, metadata=flag("holdout-bands"))
    """Frequency bands drawn from alike."""

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if not (math.isfinite(self.share) and 0 <= self.share < 1):
            raise HotStartError(f"--holdout-share must be at least 0 and below 1, got {self.share}")
        if self.bands < 1:
            raise HotStartError(f"--holdout-bands must be at least 1, got {self.bands}")


def held_out_ids(vocab: Vocab, cfg: HoldoutConfig) -> np.ndarray:
    """The sorted IDs of the held-out characters: round(share x band size) from each frequency band."""
    cfg.validate()
    chars = np.arange(len(SPECIALS), len(vocab))
    if cfg.share == 0 or not len(chars):
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed)
    chosen = [rng.choice(band, size=round(cfg.share * len(band)), replace=False)
              for band in np.array_split(chars, min(cfg.bands, len(chars)))]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


class Holdout:
    """Lookup tables for a set of held-out IDs in a vocabulary of `vocab_size`."""

    def __init__(self, held: np.ndarray, vocab_size: int) -> None:
        self.ids = torch.as_tensor(held, dtype=torch.long)
        self.mask = torch.zeros(vocab_size, dtype=torch.bool)
        self.mask[self.ids] = True

    def inputs(self, ids: torch.Tensor) -> torch.Tensor:
        """IDs with every held-out character replaced by <unk>."""
        return ids.masked_fill(self.mask.to(ids.device)[ids], UNK_ID)

    def targets(self, ids: torch.Tensor) -> torch.Tensor:
        """IDs with every held-out character replaced by <pad>, which the loss ignores."""
        return ids.masked_fill(self.mask.to(ids.device)[ids], PAD_ID)
