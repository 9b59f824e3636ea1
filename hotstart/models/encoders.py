"""Glyph encoders: a rendered character thumbnail (R x R) -> one vector in the decoder's space.

The paper (sec. "Key Designs" 1) compares three visual input paths:
  orig  a ResNet encoder (designed for 64x64, over-sized for 8x8) + adapter   paper: 26.45M params
  opt   a minimal encoder + a deep (3-layer MLP) adapter                        paper: 22.32M
  simp  the same minimal encoder + one linear adapter                           paper: 12.61M
The paper gives no layer-level details, so the layers below are ours; every encoder ends in
global or adaptive average pooling, so one trained encoder accepts any resolution (which is what
lets `hotstart eval --res` test robustness without retraining). Normalisation inside the ResNet
is GroupNorm by default rather than BatchNorm so that an encoding depends on the glyph alone, never
on which other glyphs share the batch: the training path encodes only the distinct glyphs of a batch
and evaluation encodes the whole vocabulary once, and both give the same vectors. `norm="batch"`
(a standard ResNet's) normalises over the distinct glyphs of each training batch and uses the
running statistics in evaluation; `norm="none"` leaves the convolutions unnormalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import flag
from ..errors import HotStartError

ENCODER_NAMES = ("orig", "opt", "simp")
ENCODER_NORMS = ("group", "batch", "none")
ENCODER_SIZES = ("ours", "paper")
# Input-path parameters the paper reports at GPT-2 small (efficiency table): what `size="paper"` aims at.
PAPER_INPUT_PARAMS = {"orig": 26.45e6, "opt": 22.32e6, "simp": 12.61e6}


@dataclass
class EncoderConfig:
    """Which glyph encoder + adapter, and its size."""

    name: str = field(default="simp", metadata=flag("encoder"))
    """Which encoder: orig (ResNet + MLP adapter), opt (minimal + deep adapter), simp (minimal + linear)."""
    width: int = field(default=0, metadata=flag("encoder-width"))
    """Base channel count; 0 derives it from `size` and the decoder width (see `derived_width`)."""
    size: str = field(default="ours", metadata=flag("encoder-size"))
    """How `width` is derived when it is 0: ours (see `derived_width`) or paper (the width whose input
    path has the paper's parameter count at GPT-2 small, and the same share of the decoder's
    parameters at other decoder sizes; see `paper_width`)."""
    pool: int = field(default=4, metadata=flag("encoder-pool"))
    """Side of the adaptive-average-pool grid the minimal encoder flattens (opt/simp); 0 = no pooling:
    the adapter sees the whole feature map (its size then depends on the resolution)."""
    patch: int = field(default=0, metadata=flag("encoder-patch"))
    """opt/simp: stride of the first conv (s x s patches); 0 derives it from the resolution trained at
    (1 up to 8x8, else ceil(res / 8)). Kept when a trained model is evaluated at another resolution."""
    norm: str = field(default="group", metadata=flag("encoder-norm"))
    """orig: normalisation after each ResNet convolution, group (ours), batch (a standard ResNet's) or
    none. The minimal encoders (opt/simp) have no normalisation layers."""
    adapter_init_std: float = 0.0
    """A control: std of the normal init of every adapter weight (biases start at zero); 0 keeps PyTorch's
    default, uniform with std 1/sqrt(3 * fan_in). Adam moves a weight by about the lr whatever its size,
    so this sets the adapter's relative step: 0.02 puts it where the index table's is."""

    def validate(self) -> None:
        """Raise HotStartError for an unknown choice or a negative size."""
        for what, value, allowed in (("encoder", self.name, ENCODER_NAMES), ("encoder norm", self.norm, ENCODER_NORMS),
                                     ("encoder size", self.size, ENCODER_SIZES)):
            if value not in allowed:
                raise HotStartError(f"unknown {what} '{value}'; choose one of {', '.join(allowed)}")
        if not (math.isfinite(self.adapter_init_std) and self.adapter_init_std >= 0):
            raise HotStartError(f"--adapter-init-std must be a number >= 0 (0: PyTorch's default init), got {self.adapter_init_std}")
        if self.width < 0 or self.pool < 0 or self.patch < 0:
            raise HotStartError(f"encoder width, pool and patch must be >= 0, got {self.width}, {self.pool}, {self.patch}")
        if self.name != "orig" and self.norm != "group":
            raise HotStartError(f"--encoder-norm {self.norm} applies to the ResNet encoder (orig) only; "
                                f"{self.name} has no normalisation layers")


def derived_width(name: str, n_embd: int) -> int:
    """Base channels: the ResNet scales with the decoder (ResNet-18's 64 at GPT-2 small's 768),
    the minimal encoders keep 32 at every size.

    A 64-wide ResNet-18 next to a 256-wide decoder would cost more than the decoder itself, so it
    scales; the two-convolution encoders are cheap at any width (they only see a batch's distinct
    glyphs), and narrowing them below 32 channels would starve a linear adapter of features.
    """
    if name != "orig":
        return 32
    return max(8, round(64 * n_embd / 768 / 8) * 8)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The ResNet's normalisation after a convolution: GroupNorm, BatchNorm2d or none."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    return nn.GroupNorm(_groups(channels), channels)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + identity or 1x1 projection shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str = "group") -> None:
        super().__init__()
        # without a normalisation layer to carry a shift, the convolutions get their own biases
        bias = norm == "none"
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=bias)
        self.norm1 = norm_layer(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=bias)
        self.norm2 = norm_layer(norm, c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=bias), norm_layer(norm, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        h = torch.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 channels per group, as many groups as divide evenly."""
    for groups in (32, 16, 8, 4, 2):
        if channels % groups == 0 and channels // groups >= 4:
            return groups
    return 1


class ResNetEncoder(nn.Module):
    """ResNet-18 layout (stem + 4 stages x 2 blocks, widths w, 2w, 4w, 8w) -> (N, 8w)."""

    def __init__(self, width: int, norm: str = "group") -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 8 * width)
        # 3x3 stride-1 stem, no max-pool: at 8x8 there are no pixels to spare (the 7x7/2 stem +
        # pool of ImageNet ResNets would reduce an 8x8 glyph to 2x2 before the first block).
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=norm == "none"), norm_layer(norm, width), nn.ReLU())
        blocks, c_in = [], width
        for i, c_out in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks += [BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_features = widths[-1]
        # channels-last convolutions ran this encoder faster on CPU (bench/run.py times vision-orig)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, R, R) glyphs -> (N, 8w) features."""
        x = x.contiguous(memory_format=torch.channels_last)
        h = self.blocks(self.stem(x))  # (N, 1, R, R) -> (N, 8w, R/8, R/8)
        return h.mean(dim=(2, 3))  # global average pool -> (N, 8w)


class MinimalEncoder(nn.Module):
    """A 3x3 conv, a strided 3x3 conv, then an adaptive average pool to pool x pool -> flat features.

    Above 8x8 the first conv takes non-overlapping s x s patches (s = ceil(res / 8)) instead, so every
    resolution reaches the second conv as a grid of at most 8x8: each pixel still reaches the encoder,
    but its cost stops growing with the square of the resolution (a full-resolution first conv made
    80x80 runs impractical on a CPU). At 8x8 and below the layers are the plain two-conv encoder.
    """

    def __init__(self, width: int, pool: int, res: int = 8, stride: int = 0) -> None:
        super().__init__()
        stride = stride or patch_stride(res)
        pad = (stride * -(-res // stride) - res + 1) // 2  # enough that the patches cover every pixel
        first = nn.Conv2d(1, width, 3, 1, 1) if stride == 1 else nn.Conv2d(1, width, stride, stride, pad)
        self.net = nn.Sequential(
            first,
            nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1),
            nn.GELU(),
        )
        # pool 0 keeps the whole feature map: G = ceil(ceil(R / s) / 2) after the two convolutions
        self.grid = pool or math.ceil(math.ceil(res / stride) / 2)
        self.pool = nn.AdaptiveAvgPool2d(self.grid)
        self.out_features = 2 * width * self.grid * self.grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, R, R) glyphs -> (N, 2w * G^2) features."""
        h = self.net(x)  # (N, 1, R, R) -> (N, 2w, G, G)
        if h.shape[-1] != self.grid or h.shape[-2] != self.grid:  # 8x8 glyphs give pool x pool already
            h = self.pool(h)
        return h.flatten(1)  # (N, 2w * G^2)


def patch_stride(res: int) -> int:
    """Stride of the minimal encoder's first conv: 1 up to 8x8, then ceil(res / 8) (a grid of <= 8x8)."""
    return max(1, -(-res // 8))


def mlp_adapter(d_in: int, d_hidden: int, d_out: int, depth: int) -> nn.Sequential:
    """`depth` linear layers with GELU between them (depth 1 = a single linear map)."""
    dims = [d_in] + [d_hidden] * (depth - 1) + [d_out]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < depth - 1:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class GlyphEncoder(nn.Module):
    """Encoder + adapter: (N, R, R) glyph thumbnails -> (N, n_embd)."""

    def __init__(self, cfg: EncoderConfig, n_embd: int, res: int = 8, width: int = 0) -> None:
        """`width` overrides cfg.width (and its derivation); HotStartLM passes the derived one."""
        super().__init__()
        cfg.validate()
        width = width or cfg.width or derived_width(cfg.name, n_embd)
        if cfg.name == "orig":
            self.encoder: nn.Module = ResNetEncoder(width, cfg.norm)
            self.adapter = mlp_adapter(self.encoder.out_features, n_embd, n_embd, depth=2)
        else:
            self.encoder = MinimalEncoder(width, cfg.pool, res, cfg.patch)
            depth = 3 if cfg.name == "opt" else 1
            self.adapter = mlp_adapter(self.encoder.out_features, 2 * n_embd, n_embd, depth)
        if cfg.adapter_init_std:
            for layer in self.adapter:
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=cfg.adapter_init_std)
                    nn.init.zeros_(layer.bias)

    def forward(self, glyphs: torch.Tensor) -> torch.Tensor:
        """(N, R, R) glyphs -> (N, n_embd) decoder inputs."""
        features = self.encoder(glyphs.unsqueeze(1))  # (N, R, R) -> (N, F)
        return self.adapter(features)  # (N, F) -> (N, n_embd)


def encoder_parameters(cfg: EncoderConfig, n_embd: int, res: int, width: int) -> int:
    """Parameters of encoder + adapter at `width` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        return sum(p.numel() for p in GlyphEncoder(cfg, n_embd, res, width).parameters())


def paper_width(cfg: EncoderConfig, n_embd: int, res: int, decoder_params: int, gpt2_small_params: int) -> int:
    """The base width whose encoder + adapter has the paper's input-path count for `cfg.name` scaled
    by this decoder's share of GPT-2 small's (our reading: the paper's counts are at GPT-2 small,
    and at another decoder size the encoder keeps the same ratio to the decoder).

    The count grows with the width, so a bisection over widths finds the closest one.
    """
    target = PAPER_INPUT_PARAMS[cfg.name] * decoder_params / gpt2_small_params
    low, high = 1, 4096
    while low < high:
        mid = (low + high) // 2
        if encoder_parameters(cfg, n_embd, res, mid) < target:
            low = mid + 1
        else:
            high = mid
    below = max(low - 1, 1)  # the width just under the target may be the closer one
    return min((below, low), key=lambda w: abs(encoder_parameters(cfg, n_embd, res, w) - target))
