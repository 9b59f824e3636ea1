"""Pixel language models: a decoder that reads a rendered line patch by patch and predicts the next patch's
pixels (PixelGPT, shared/papers/pixelgpt-dualgpt.md; PIXAR's first stage, shared/papers/pixar.md).

    line (B, N, P, P[, C]) -> positions of L patches (B, T, L*P*P*C) -> linear patch embedding
        -> [start] + positions[:-1] -> decoder (models/decoder.py; Llama-style by default) -> head
        -> the pixels of positions[0:], compared with what the line holds there

Heads:
    mse        regress each pixel (PixelGPT); with `norm_target`, against each patch's pixels
               standardised by their own mean and variance (MAE's norm_pix_loss)
    bernoulli  each pixel's probability of ink, binary cross-entropy (PIXAR stage 1's likelihood)

Our reading where the papers are silent: a learned start vector stands before the first patch, so
every patch of a line, its first included, is predicted; the loss covers every position up to and
including the line's end-of-sequence patch and nothing after it (padding is neither predicted nor,
the decoder being causal, seen by any position that is); a position's loss is the mean over its
pixels, and a batch's loss the mean over its positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import flag
from ..errors import HotStartError
from ..render.line import LineRenderConfig
from .decoder import (
    DECODER_KINDS,
    DECODER_SIZES,
    DecoderConfig,
    build_decoder,
    decode_step,
    decoder_size,
)

PIXEL_HEADS = ("mse", "bernoulli")


@dataclass
class PixelLMConfig:
    """A decoder over the patches of rendered lines."""

    size: str = field(default="small-cpu", metadata=flag(by_hand=True))
    """Decoder size (models/decoder.py): tiny | small-cpu | medium-cpu | gpt2-small."""
    decoder: str = "llama"
    """llama (the papers' block, default) | gpt2 (HotStart's)."""
    line: LineRenderConfig = field(default_factory=lambda: LineRenderConfig(max_patches=256))
    """How lines are rendered (PixelGPT: 16 x 16 patches; PIXAR: 8 x 8 binary). max_patches is the
    longest line, the decoder's context in patches."""
    head: str = "mse"
    """mse (PixelGPT: regress the next patch's pixels) | bernoulli (PIXAR: each pixel's ink probability)."""
    norm_target: bool = False
    """mse: regress each patch's pixels standardised by their own mean and variance."""
    patch_len: int = 1
    """Patches per decoder position (PIXAR: L = 2)."""
    dropout: float = field(default=0.0, metadata=flag(check="dropout_rate"))
    """Decoder dropout (models/decoder.py)."""

    @property
    def channels(self) -> int:
        """3 for rgb lines, 1 for grey and binary."""
        return 3 if self.line.mode == "rgb" else 1

    @property
    def patch_pixels(self) -> int:
        """Values in one patch: P * P * C."""
        return self.line.patch ** 2 * self.channels

    @property
    def positions(self) -> int:
        """Decoder positions of the longest line: max_patches in groups of patch_len."""
        return math.ceil(self.line.max_patches / self.patch_len)

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if self.size not in DECODER_SIZES:
            raise HotStartError(f"unknown decoder size '{self.size}'; choose one of {', '.join(DECODER_SIZES)}")
        if self.decoder not in DECODER_KINDS:
            raise HotStartError(f"unknown decoder '{self.decoder}'; choose one of {', '.join(DECODER_KINDS)}")
        if self.head not in PIXEL_HEADS:
            raise HotStartError(f"unknown pixel head '{self.head}'; choose one of {', '.join(PIXEL_HEADS)}")
        if self.norm_target and self.head != "mse":
            raise HotStartError("--norm-target standardises regression targets; the bernoulli head predicts raw ink")
        if not 1 <= self.patch_len <= 8:
            raise HotStartError(f"--patch-len must be from 1 to 8 patches per position, got {self.patch_len}")
        if self.line.max_patches % self.patch_len:
            raise HotStartError(f"--patch-len {self.patch_len} does not divide the line's {self.line.max_patches} patches; "
                                f"pass a --max-patches that is a multiple of {self.patch_len}")
        self.line.validate()

    def decoder_config(self) -> DecoderConfig:
        """The decoder: the named size and kind, as many positions as the longest line, this dropout."""
        d = decoder_size(self.size, self.decoder)
        d.n_positions, d.dropout = self.positions, self.dropout
        return d


def masked_mean(values: torch.Tensor, used: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The mean of `values` where `used` holds, over everything (dim None) or along `dim`; 0 where
    nothing is used."""
    if dim is None:
        return (values * used).sum() / used.sum().clamp(min=1)
    return (values * used).sum(dim) / used.sum(dim).clamp(min=1)


class PixelLM(nn.Module):
    """Patch embedding -> decoder -> a head over the next position's pixels."""

    def __init__(self, cfg: PixelLMConfig, extra_positions: int = 0) -> None:
        """`extra_positions` lengthens the decoder's context past the longest line (DualGPT's pairs: a
        line, then its text)."""
        super().__init__()
        cfg.validate()
        self.config = cfg
        d = cfg.decoder_config()
        d.n_positions += extra_positions
        width = cfg.patch_len * cfg.patch_pixels
        self.decoder = build_decoder(d)
        self.wpe_start = nn.Parameter(torch.randn(d.n_embd) * 0.02)  # what the first patch is predicted from
        self.patch_embed = nn.Linear(width, d.n_embd)  # (B, T, L*P*P*C) -> (B, T, n_embd)
        self.head = nn.Linear(d.n_embd, width)  # (B, T, n_embd) -> (B, T, L*P*P*C)

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW leaves undecayed besides biases and norms: the start vector (an embedding)."""
        return {"wpe_start"}

    def group(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, P, P[, C]) -> (B, ceil(N / L), L*P*P*C): L neighbouring patches per position, the last
        group padded with blank patches."""
        b, n = patches.shape[:2]
        flat = patches.flatten(2)  # (B, N, P*P*C); N may be 0 (an empty prompt)
        extra = -n % self.config.patch_len
        if extra:
            flat = torch.cat([flat, flat.new_zeros(b, extra, flat.shape[-1])], dim=1)
        return flat.reshape(b, -1, self.config.patch_len * flat.shape[-1])

    def ungroup(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, T, L*P*P*C) -> (B, T*L, P, P[, C]): the inverse of `group`."""
        p, c = self.config.line.patch, self.config.channels
        shape = (p, p) if c == 1 else (p, p, c)
        return positions.reshape(positions.shape[0], -1, *shape)

    def predict(self, positions: torch.Tensor) -> torch.Tensor:
        """(B, T, L*P*P*C) grouped patches -> (B, T, L*P*P*C) head outputs: position t's from the start
        vector and positions before t (pixels for mse, ink logits for bernoulli)."""
        x = self.patch_embed(positions[:, :-1])  # (B, T-1, n_embd)
        start = self.wpe_start.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, n_embd)
        h = self.decoder(inputs_embeds=torch.cat([start, x], dim=1), use_cache=False).last_hidden_state
        return self.head(h)  # (B, T, L*P*P*C)

    def _targets(self, positions: torch.Tensor) -> torch.Tensor:
        """What the head is compared with: the pixels, or each patch's standardised pixels."""
        if not self.config.norm_target:
            return positions
        per_patch = positions.reshape(*positions.shape[:2], self.config.patch_len, -1)  # (B, T, L, P*P*C)
        mean, var = per_patch.mean(-1, keepdim=True), per_patch.var(-1, keepdim=True)
        return ((per_patch - mean) / (var + 1e-6).sqrt()).reshape(positions.shape)

    def position_outputs(self, patches: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T) loss of every position (mean over its pixels), (B, T) bool: positions that hold part
        of the line (up to and including its end-of-sequence patch), and (B, T, L*P*P*C) the head's
        outputs they come from."""
        positions = self.group(patches)  # (B, T, L*P*P*C)
        out = self.predict(positions).float()
        target = self._targets(positions).float()
        if self.config.head == "mse":
            per_pixel = (out - target) ** 2
        else:
            per_pixel = F.binary_cross_entropy_with_logits(out, target, reduction="none")
        used = torch.arange(positions.shape[1], device=lengths.device)[None, :] * self.config.patch_len < lengths[:, None]
        return per_pixel.mean(-1), used.to(per_pixel.device), out

    def position_losses(self, patches: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) loss of every position and (B, T) bool: the positions that count (position_outputs)."""
        losses, used, _ = self.position_outputs(patches, lengths)
        return losses, used

    def forward(self, patches: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The mean loss over the batch's line positions."""
        losses, used = self.position_losses(patches, lengths)
        return masked_mean(losses, used)

    def line_losses(self, patches: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) each line's mean loss over its own positions (evaluation, per language)."""
        losses, used = self.position_losses(patches, lengths)
        return masked_mean(losses, used, dim=1)

    def pixels(self, out: torch.Tensor) -> torch.Tensor:
        """Head outputs -> ink in [0, 1] a reader can look at: bernoulli's probabilities; mse's values
        clamped, or, for standardised targets, each patch stretched to [0, 1] (our reading: the patch's
        own mean and variance are what it predicts away)."""
        if self.config.head == "bernoulli":
            return torch.sigmoid(out)
        if not self.config.norm_target:
            return out.clamp(0, 1)
        per_patch = out.reshape(*out.shape[:2], self.config.patch_len, -1)
        low, high = per_patch.amin(-1, keepdim=True), per_patch.amax(-1, keepdim=True)
        return ((per_patch - low) / (high - low).clamp(min=1e-6)).reshape(out.shape)

    def _binarised(self, pixels: torch.Tensor) -> torch.Tensor:
        """Generated pixels as the line mode holds them: binary lines get ink where it is at least 1/2."""
        return (pixels >= 0.5).to(pixels.dtype) if self.config.line.mode == "binary" else pixels

    @torch.no_grad()
    def generate(self, prompt: torch.Tensor, new_positions: int) -> torch.Tensor:
        """(B, N, P, P[, C]) prompt patches -> (B, (N // L + new_positions) * L, ...): the prompt's whole
        positions, then `new_positions` positions predicted greedily, each from all before it (binary
        lines: ink where its probability or value is at least 1/2). A prompt that ends inside a position
        (N % L patches) has those patches stand in the first new position in place of their predictions,
        so the result's first N patches are always the prompt's. The decoder keeps its keys and values
        (a KV cache): each new position costs one position's forward pass. Generation stops at the
        decoder's context."""
        whole = prompt.shape[1] // self.config.patch_len
        positions = self.group(prompt[:, : whole * self.config.patch_len])  # (B, T, L*P*P*C)
        known = prompt[:, whole * self.config.patch_len :].flatten(1)  # (B, (N % L)*P*P*C)
        new_positions = min(new_positions, self.config.positions - whole)
        if new_positions <= 0:
            return self.ungroup(positions)
        x = self.patch_embed(positions)
        start = self.wpe_start.to(x.dtype).expand(x.shape[0], 1, -1)
        hidden, cache = decode_step(self.decoder, torch.cat([start, x], dim=1))
        generated = [positions]
        for step in range(new_positions):
            nxt = self._binarised(self.pixels(self.head(hidden[:, -1:]))).to(positions.dtype)  # (B, 1, L*P*P*C)
            if step == 0 and known.shape[1]:
                nxt = torch.cat([known[:, None].to(nxt.dtype), nxt[..., known.shape[1] :]], dim=-1)
            generated.append(nxt)
            if step + 1 < new_positions:
                hidden, cache = decode_step(self.decoder, self.patch_embed(nxt), cache)
        return self.ungroup(torch.cat(generated, dim=1))
