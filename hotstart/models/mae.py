"""PIXEL-M4's pixel encoder: a ViT masked autoencoder over a rendered line (shared/papers/pixel-m4.md).

A line of `max_patches` patches (render/line.py) is laid out row by row on a square grid, as PIXEL
does (529 = 23 x 23 patches of 16 x 16: a 368 x 368 image), and fed to `transformers`' ViTMAE: a ViT
encoder over the patches left visible, a light decoder that predicts the pixels of every patch, and an
MSE loss on the masked patches only, against per-patch normalised pixels. Which patches are masked
comes from span masking (PIXEL: 25% of the patches, in spans of up to 6 neighbours): we hand ViTMAE
the `noise` it ranks patches by, masked patches highest, so its own masking masks exactly our spans.

Pixels go in as the renderer makes them, ink coverage (0 background, 1 ink), one channel for grey and
binary lines and three for rgb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import ViTMAEConfig, ViTMAEForPreTraining

from ..config import flag
from ..errors import HotStartError
from ..render.line import LineRenderConfig


@dataclass
class MAESize:
    """Encoder and decoder widths and depths (ViTMAE's names)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    decoder_hidden_size: int
    decoder_num_hidden_layers: int
    decoder_num_attention_heads: int


MAE_SIZES = {
    "tiny": MAESize(64, 2, 2, 64, 1, 2),  # tests and the demo: seconds
    "small-cpu": MAESize(256, 4, 4, 128, 2, 4),  # a CPU budget, as the decoders' small-cpu
    "base": MAESize(768, 12, 12, 512, 8, 16),  # PIXEL / PIXEL-M4: ViT-MAE base, 8-layer decoder of 512
}


@dataclass
class MAEConfig:
    """A pixel masked autoencoder over rendered lines."""

    size: str = field(default="small-cpu", metadata=flag(by_hand=True))
    """tiny | small-cpu | base (PIXEL-M4's)."""
    line: LineRenderConfig = field(default_factory=LineRenderConfig)
    """How lines are rendered: its patch, mode and max_patches (a square number: the line is laid
    out on a square grid) shape the model."""
    mask_ratio: float = 0.25
    """Share of the patches masked (PIXEL: 25%)."""
    max_span: int = 6
    """Longest run of neighbouring patches masked together (PIXEL: 6)."""
    norm_pix_loss: bool = True
    """Loss against each patch's pixels standardised by their own mean and variance (MAE's and PIXEL's)."""
    dropout: float = field(default=0.0, metadata=flag(check="dropout_rate"))
    """Dropout in the encoder and decoder blocks (ViT-MAE's default: none)."""

    @property
    def patch(self) -> int:
        """Patch side in pixels: the line renderer's."""
        return self.line.patch

    @property
    def max_patches(self) -> int:
        """Patches per line."""
        return self.line.max_patches

    @property
    def channels(self) -> int:
        """3 for rgb lines, 1 for grey and binary."""
        return 3 if self.line.mode == "rgb" else 1

    @property
    def grid(self) -> int:
        """Patches per side of the square image."""
        return math.isqrt(self.max_patches)

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if self.size not in MAE_SIZES:
            raise HotStartError(f"unknown MAE size '{self.size}'; choose one of {', '.join(MAE_SIZES)}")
        self.line.validate()
        if self.grid ** 2 != self.max_patches:
            raise HotStartError(f"max_patches {self.max_patches} is not a square number; the MAE lays a line out on "
                                f"a square grid of patches (PIXEL: 529 = 23 x 23)")
        if not 0 < self.mask_ratio < 1:
            raise HotStartError(f"mask_ratio must be between 0 and 1, got {self.mask_ratio}")
        if self.max_span < 1:
            raise HotStartError(f"max_span must be at least 1, got {self.max_span}")

    def vit_config(self) -> ViTMAEConfig:
        """The `transformers` config this builds."""
        s = MAE_SIZES[self.size]
        return ViTMAEConfig(
            hidden_size=s.hidden_size, num_hidden_layers=s.num_hidden_layers, num_attention_heads=s.num_attention_heads,
            intermediate_size=4 * s.hidden_size, decoder_hidden_size=s.decoder_hidden_size,
            decoder_num_hidden_layers=s.decoder_num_hidden_layers, decoder_num_attention_heads=s.decoder_num_attention_heads,
            decoder_intermediate_size=4 * s.decoder_hidden_size, image_size=self.grid * self.patch, patch_size=self.patch,
            num_channels=self.channels, mask_ratio=self.mask_ratio, norm_pix_loss=self.norm_pix_loss,
            hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout,
            attn_implementation="sdpa",  # PyTorch's fused attention: the eager path's (B, H, N, N) softmax dominates
        )

    @property
    def n_masked(self) -> int:
        """Patches ViTMAE masks in every line: all but int(N * (1 - ratio)) (its own rounding)."""
        return self.max_patches - int(self.max_patches * (1 - self.mask_ratio))


def span_mask(lengths: np.ndarray, n_patches: int, n_masked: int, max_span: int,
              rng: np.random.Generator) -> np.ndarray:
    """(B, N) bool: `n_masked` patches of each line masked in spans of 1..max_span neighbours.

    Spans lie inside each line's text patches (its first `lengths[b]`); where those are fewer than
    n_masked, the rest of the mask falls on the first padding patches, as ViTMAE's fixed count requires.
    Our reading of PIXEL's span masking: span lengths uniform in 1..max_span, the last one cut so the
    count is exact, and the spans placed in a uniformly random order among the unmasked patches
    (spans may touch, never overlap).
    """
    mask = np.zeros((len(lengths), n_patches), dtype=bool)
    for b, length in enumerate(np.asarray(lengths).tolist()):
        text = min(int(length), n_patches)
        want = min(n_masked, text)
        spans = rng.integers(1, max_span + 1, size=max(want, 1))  # (want,) always enough to cover it
        ends = np.cumsum(spans)
        k = int(np.searchsorted(ends, want))  # the (k+1)-th span reaches `want`
        spans = spans[: k + 1]
        spans[-1] -= ends[k] - want  # cut the last to hit the count
        # stars and bars: the k+1 spans and the text's unmasked patches, in a random order
        slots = np.sort(rng.choice(text - want + k + 1, size=k + 1, replace=False))
        starts = slots - np.arange(k + 1) + np.concatenate([[0], np.cumsum(spans)[:-1]])
        steps = np.arange(want) - np.repeat(np.cumsum(spans) - spans, spans)  # 0..s-1 within each span
        mask[b, np.repeat(starts, spans) + steps] = True
        mask[b, text : text + n_masked - want] = True  # a short line: padding makes up the count
    return mask


def mask_noise(mask: torch.Tensor) -> torch.Tensor:
    """(B, N) noise for ViTMAE's masking that ranks exactly the patches of `mask` highest (masked).
    Its order within the kept and within the masked patches does not matter: ViTMAE restores it."""
    return torch.arange(mask.shape[1], dtype=torch.float32, device=mask.device) / mask.shape[1] + mask.float()


def grid_image(patches: torch.Tensor, cfg: MAEConfig) -> torch.Tensor:
    """(B, N, P, P) or (B, N, P, P, C) line patches -> the (B, C, G*P, G*P) square image ViTMAE reads:
    patch k at grid row k // G, column k % G."""
    if patches.dim() == 4:
        patches = patches.unsqueeze(-1)  # (B, N, P, P, 1)
    b = patches.shape[0]
    grid = patches.reshape(b, cfg.grid, cfg.grid, cfg.patch, cfg.patch, cfg.channels)  # (B, G, G, P, P, C)
    return grid.permute(0, 5, 1, 3, 2, 4).reshape(b, cfg.channels, cfg.grid * cfg.patch, cfg.grid * cfg.patch)


def set_position_embeddings(mae: ViTMAEForPreTraining) -> None:
    """Give ViTMAE its fixed sin-cos position embeddings (encoder and decoder) and its class and mask tokens
    where `transformers` left them at zero, as 5.x does for a model built from a config: the encoder's
    `initialize_weights` returns early once the patch projection is marked initialised, and the decoder's is
    not called. At zero the model knows no position at all: every masked patch gets the same decoder input,
    so all it can predict is one mean patch; and a blank patch's token is exactly constant, so the encoder's
    LayerNorm (eps 1e-12) sends back infinite gradients. The MAE runs trained before this fix had both
    (tests/test_mae.py checks the embeddings and that a tiny MAE now memorises a batch)."""
    embeddings, decoder = mae.vit.embeddings, mae.decoder
    with torch.no_grad():
        if not embeddings.position_embeddings.any():
            embeddings.patch_embeddings.projection._is_hf_initialized = False  # let it run
            embeddings.initialize_weights()
        if not decoder.decoder_pos_embed.any():
            decoder.initialize_weights(embeddings.patch_embeddings.num_patches)


class PixelMAE(nn.Module):
    """`transformers` ViTMAE fed with rendered lines: (B, N, P, P[, C]) patches in, loss and pixels out."""

    def __init__(self, cfg: MAEConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.mae = ViTMAEForPreTraining(cfg.vit_config())
        set_position_embeddings(self.mae)

    def no_weight_decay(self) -> set[str]:
        """Parameters AdamW leaves undecayed besides biases and norms: the class and mask tokens (as
        MAE's and timm's recipes; the position embeddings are fixed sin-cos tables, not trained)."""
        return {"mae.vit.embeddings.cls_token", "mae.decoder.mask_token"}

    def to_image(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, N, P, P) or (B, N, P, P, C) -> (B, C, G*P, G*P): patch k at grid row k // G, column k % G."""
        return grid_image(patches, self.config)

    def forward(self, patches: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss on the masked patches (normalised pixels where norm_pix_loss) and the (B, N, P*P*C)
        prediction of every patch, in the loss's (normalised) pixel space."""
        noise = mask_noise(mask.to(patches.device))
        out = self.mae(pixel_values=self.to_image(patches), noise=noise)
        return out.loss, out.logits

    def line_losses(self, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) the loss of each line on its own, computed as ViTMAE computes the batch's (their mean
        when every line masks the same count): for evaluation per language."""
        image = self.to_image(patches)
        out = self.mae(pixel_values=image, noise=mask_noise(mask.to(patches.device)))
        target = self.mae.patchify(image)
        if self.config.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
        per_patch = ((out.logits.float() - target.float()) ** 2).mean(-1)
        return (per_patch * out.mask).sum(1) / out.mask.sum(1)

    def reconstruct(self, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, N, P, P[, C]) pixels a reader can look at: masked patches predicted (un-normalised with
        each patch's own mean and variance, as MAE's visualisations do), visible ones as given."""
        cfg = self.config
        _, logits = self(patches, mask)
        pred = logits.reshape(*patches.shape[:2], cfg.patch, cfg.patch, cfg.channels)  # (B, N, P, P, C)
        original = patches if patches.dim() == 5 else patches.unsqueeze(-1)
        if cfg.norm_pix_loss:
            flat = original.reshape(*original.shape[:2], -1)
            mean, var = flat.mean(-1), flat.var(-1)
            pred = pred * (var + 1e-6).sqrt()[..., None, None, None] + mean[..., None, None, None]
        shown = torch.where(mask[..., None, None, None].to(patches.device), pred, original).clamp(0, 1)
        return shown if patches.dim() == 5 else shown.squeeze(-1)
