"""Which pixels of a glyph a vision LM reads: per-pixel attribution of its next-character prediction,
with Captum's integrated gradients and occlusion, aggregated per pixel position.

The paper explains its Vision-50% robustness by a "toast centre" (central strokes, about 30% of the
pixels, carry most of the discriminative power) from qualitative pictures. Here it is measured. Our
reading where the paper leaves room:

- What is attributed: at a validation position t, the log-probability the model gives the true next
  character, to the pixels of the glyph it reads at t (the rest of its context as read). Positions
  are drawn at random from the validation sequences, so every character of the vocabulary counts as
  often as it occurs (as it does in accuracy); a glyph that draws nothing is skipped.
- Integrated gradients from a blank glyph (no ink): the natural "nothing read" picture. Occlusion
  blanks one pixel at a time and takes the drop in that log-probability (a larger square would hand
  its whole drop to the blank pixels inside it too).
- Both give a blank pixel no attribution (nothing to take away), so only inked pixels can hold any:
  the ink's own share in the centre is reported beside the attribution's, and attribution more central
  than the ink is what leaning on central strokes means here.
- Each position's |attribution| is made a share of its total before averaging, so every position
  weighs the same whatever its scale; the mean is a map of the ink box that sums to 1.
- The centre is render/glyph.py: centre_region (whole rings of the ink box nearest its middle, about
  30% of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.prepared import PAD_ID, SPECIALS
from ..errors import HotStartError
from ..models.hotstart_lm import HotStartLM

METHODS = ("integrated_gradients", "occlusion")
TOP_SHARE = 0.3
"""The paper's "about 30% of pixels": the share of a glyph's pixels whose attribution mass is reported."""


@dataclass
class AttributionConfig:
    """How many positions are attributed, and how."""

    positions: int = 512
    """Validation positions attributed (drawn at random; fewer if the sequences hold fewer)."""
    context: int = 32
    """Characters of context the model reads up to and including the attributed glyph."""
    steps: int = 32
    """Integrated gradients: points on the path from the blank glyph."""
    batch: int = 16
    """Positions per forward pass (times `steps` for integrated gradients)."""
    seed: int = 0


def sample_positions(sequences: torch.Tensor, glyphs: torch.Tensor, cfg: AttributionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L) sequences -> (K, context) windows ending at the attributed character, and (K,) the
    characters that follow them: positions whose character draws ink and whose next one is not <pad>."""
    length = sequences.shape[1]
    if length <= cfg.context:
        raise HotStartError(f"attribution reads {cfg.context} characters of context, but the sequences hold {length}; "
                            f"use a corpus prepared with --seq-len above {cfg.context}")
    inked = glyphs.flatten(1).sum(1) > 0  # (V,)
    inked[: len(SPECIALS)] = False
    ends = torch.arange(cfg.context - 1, length - 1)  # the attributed position t; its target is t + 1
    ok = inked[sequences[:, ends]] & (sequences[:, ends + 1] != PAD_ID)  # (N, T')
    rows, cols = torch.nonzero(ok, as_tuple=True)
    if len(rows) == 0:
        raise HotStartError("no validation position reads an inked glyph; check the run's font and vocabulary")
    generator = torch.Generator().manual_seed(cfg.seed)
    pick = torch.randperm(len(rows), generator=generator)[: cfg.positions]
    seq, end = rows[pick], ends[cols[pick]]
    offsets = torch.arange(-cfg.context + 1, 1)
    windows = sequences[seq[:, None], end[:, None] + offsets]  # (K, context)
    return windows, sequences[seq, end + 1]


class NextCharScore(torch.nn.Module):
    """(B, R, R) pixels of the last glyph read, (B, context) windows, (B,) targets -> (B,) log-probability
    of each target: the model reading its window with the last glyph's pixels swapped in. The rest of
    the window is read from the model's own encoded vocabulary, fixed (and, with --center, so is the
    vocabulary's mean that centring subtracts). The model's weights are frozen while it scores
    (`attribute` gives them their flags back)."""

    def __init__(self, model: HotStartLM) -> None:
        super().__init__()
        if model.config.input.kind != "vision":
            raise HotStartError("attribution reads a vision run's glyph pixels; an index run reads no pixels")
        self.model = model.eval()
        for param in model.parameters():  # only the pixels need gradients
            param.requires_grad_(False)
        with torch.no_grad():
            self.table = model.input.vocabulary()  # (V, n_embd), centred when the model centres
            self.offset = (model.input.embed_glyphs(model.input.glyphs).mean(0) if model.input.center
                           else torch.zeros(self.table.shape[1], device=self.table.device))
            weight, bias = model.output_layer()
            self.weight, self.bias = weight.detach(), None if bias is None else bias.detach()

    def forward(self, pixels: torch.Tensor, windows: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        last = self.model.input.embed_glyphs(pixels) - self.offset  # (B, n_embd)
        x = torch.cat([F.embedding(windows[:, :-1], self.table), last[:, None]], 1)  # (B, context, n_embd)
        h = self.model.decoder(inputs_embeds=x, use_cache=False).last_hidden_state[:, -1]  # (B, n_embd)
        logp = F.log_softmax(F.linear(h, self.weight, self.bias).float(), -1)  # (B, V)
        return logp.gather(1, targets[:, None]).squeeze(1)


def captum_methods() -> tuple[Any, Any]:
    """Captum's IntegratedGradients and Occlusion, or a one-line error saying how to install Captum."""
    try:
        from captum.attr import IntegratedGradients, Occlusion
    except ImportError:
        raise HotStartError("attribution needs Captum; pip install 'hotstart[attribution]'") from None
    return IntegratedGradients, Occlusion


def attribute(model: HotStartLM, windows: torch.Tensor, targets: torch.Tensor, cfg: AttributionConfig,
              method: str) -> tuple[torch.Tensor, dict[str, float]]:
    """(K, R, R) per-pixel attribution of each position's log-probability to its last glyph's pixels,
    and what checks it (integrated gradients: how far the attributions' sum is from the score's change
    along the path, its completeness; relative to that change)."""
    IntegratedGradients, Occlusion = captum_methods()
    if method not in METHODS:
        raise HotStartError(f"unknown attribution method '{method}'; choose {' or '.join(METHODS)}")
    needs_grad = [p.requires_grad for p in model.parameters()]
    score = NextCharScore(model)
    device = score.table.device
    glyphs = model.input.glyphs
    out, gaps, changes = [], [], []
    for start in range(0, len(windows), cfg.batch):
        w, t = windows[start : start + cfg.batch].to(device), targets[start : start + cfg.batch].to(device)
        pixels = glyphs[w[:, -1]]  # (B, R, R) the glyph read last, as the model's bank draws it
        blank = torch.zeros_like(pixels)
        if method == "integrated_gradients":
            attr, delta = IntegratedGradients(score).attribute(pixels, baselines=blank, additional_forward_args=(w, t),
                                                               n_steps=cfg.steps, return_convergence_delta=True)
            with torch.no_grad():
                changes.append((score(pixels, w, t) - score(blank, w, t)).abs().cpu())
            gaps.append(delta.abs().detach().cpu())
        else:
            with torch.no_grad():
                attr = Occlusion(score).attribute(pixels, sliding_window_shapes=(1, 1), baselines=0.0,
                                                  additional_forward_args=(w, t), perturbations_per_eval=16)
        out.append(attr.detach().float().cpu())
    for param, flag in zip(model.parameters(), needs_grad):  # as the caller had them
        param.requires_grad_(flag)
    checks = {}
    if gaps:
        checks["completeness_gap"] = float(torch.cat(gaps).mean() / torch.cat(changes).mean().clamp_min(1e-12))
    return torch.cat(out), checks


def share_maps(values: torch.Tensor) -> torch.Tensor:
    """(K, R, R) -> the same, each |map| divided by its sum; maps with nothing in them are dropped."""
    mass = values.abs().flatten(1)
    total = mass.sum(1)
    keep = total > 0
    return (mass[keep] / total[keep, None]).reshape(-1, *values.shape[1:])


def top_mass(shares: torch.Tensor, ink_px: int, top: float = TOP_SHARE) -> float:
    """Mean over maps of the mass held by each map's own top `top` share of the ink box's pixels."""
    k = max(1, round(top * ink_px * ink_px))
    return float(shares.flatten(1).topk(k, dim=1).values.sum(1).mean())


def summarise(shares: torch.Tensor, centre: np.ndarray, ink_px: int) -> dict[str, Any]:
    """The mean share map (a list of rows), its mass in the centre region, and the top-30% mass."""
    mean = shares.mean(0)
    return {"map": mean.tolist(), "in_centre": float(mean[torch.from_numpy(centre)].sum()),
            "top30": top_mass(shares, ink_px), "positions": len(shares)}
