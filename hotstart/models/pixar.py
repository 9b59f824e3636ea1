"""PIXAR's second stage (shared/papers/pixar.md): a pixel LM trained by likelihood is sharpened by an
adversarial loss, so that what it writes is legible.

    predicted ink probabilities of each position (B, T, L*P*P) --+
    the line's real patches at each position (B, T, L*P*P) -------+--> patch discriminator -> real or not

Generator loss:      rec + lambda * adv,  adv = -log D(fake)  (the non-saturating GAN loss)
Discriminator loss:  -log D(real) - log(1 - D(fake))  (its gradient never reaches the generator)

The paper gives the automatic weight lambda only in outline, and its stage 2 is the least specified
part of it (the paper summary says so). Our reading, after VQGAN's adaptive weight, which PIXAR's
released code approximates: lambda = weight * |grad rec| / (|grad adv| + 1e-4), both gradients taken
at the generator's last layer (the head's weight matrix), computed afresh at every step, clamped to
[0, 1e4] and held constant (detached) in the step's backward pass. The discriminator is one vector per
decoder position: a linear projection of its L patches, residual MLP blocks (LayerNorm, GELU,
dropout) and one logit, as the PIXAR code's discriminator; it judges the teacher-forced predictions of
every position the line covers, not free-running generations.

What the discriminator sees of the generator (`disc_sees`): real patches are binary, so soft ink
probabilities ("soft", the first implementation) are told apart by their grey values alone: D was right
0.99 of the time by step 50 and the adaptive weight fell to about 0.003, leaving the generator no usable
signal. "emitted" (new runs) shows D what generation writes, the probabilities binarised at 1/2, with the
gradient passed straight through the threshold to the probabilities (a straight-through estimator; our
choice among the ways to make real and fake alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..config import flag
from ..errors import HotStartError
from .pixel_lm import PixelLM, PixelLMConfig, masked_mean


@dataclass
class AdversarialConfig:
    """PIXAR's stage 2: where it starts and how the adversarial loss weighs."""

    stage1_run: str = ""
    """Run folder of the stage-1 model (a next-patch or pixar stage-1 run); its model settings are used."""
    stage1_checkpoint: str = "best"
    """best | last: which of the stage-1 run's weights stage 2 starts from."""
    weight: float = field(default=1.0, metadata=flag("adversarial-weight"))
    """The adversarial term's share on top of the automatic weight (1: as large a gradient as rec)."""
    disc_width: int = 256
    """Width of the discriminator's residual MLP."""
    disc_blocks: int = 2
    """Residual blocks of the discriminator (PIXAR's code: 2)."""
    disc_dropout: float = 0.2
    """Dropout in the discriminator's blocks (PIXAR's code: 0.2)."""
    disc_sees: str = "soft"
    """emitted (what `hotstart train` asks for unless told otherwise): the generator's ink binarised at 1/2, as
    generation emits it, with a straight-through gradient; soft: its ink probabilities, which binary real
    patches give away (runs saved before this option, and the grids until they are re-planned)."""

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field."""
        if self.stage1_checkpoint not in ("best", "last"):
            raise HotStartError(f"--stage1-checkpoint must be best or last, got '{self.stage1_checkpoint}'")
        if self.weight < 0:
            raise HotStartError(f"--adversarial-weight must be >= 0, got {self.weight}")
        if self.disc_width < 1:
            raise HotStartError(f"--disc-width must be >= 1, got {self.disc_width}")
        if self.disc_blocks < 0:
            raise HotStartError(f"--disc-blocks must be >= 0, got {self.disc_blocks}")
        if self.disc_sees not in ("emitted", "soft"):
            raise HotStartError(f"--disc-sees must be emitted or soft, got '{self.disc_sees}'")
        if not 0 <= self.disc_dropout < 1:
            raise HotStartError(f"the discriminator's dropout must be in [0, 1), got {self.disc_dropout}")


class _Block(nn.Module):
    """x + dropout(GELU(W2 GELU(W1 LayerNorm(x))))."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class PatchDiscriminator(nn.Module):
    """(B, T, L*P*P*C) patches of each position -> (B, T) logits that they are real."""

    def __init__(self, in_features: int, cfg: AdversarialConfig) -> None:
        super().__init__()
        self.project = nn.Linear(in_features, cfg.disc_width)
        self.blocks = nn.Sequential(*[_Block(cfg.disc_width, cfg.disc_dropout) for _ in range(cfg.disc_blocks)])
        self.logit = nn.Linear(cfg.disc_width, 1)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.logit(self.blocks(self.project(positions))).squeeze(-1).float()  # losses in fp32 under autocast


class AdversarialPixelLM(PixelLM):
    """A PixelLM with PIXAR's discriminator beside it; its forward is stage 2's whole loss."""

    def __init__(self, cfg: PixelLMConfig, adversarial: AdversarialConfig) -> None:
        super().__init__(cfg)
        adversarial.validate()
        self.adversarial = adversarial
        self.discriminator = PatchDiscriminator(cfg.patch_len * cfg.patch_pixels, adversarial)
        self.last_parts: dict[str, float] = {}
        """The latest training step's rec, adv, disc and adv_weight, for the metrics rows."""

    def forward(self, patches: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """rec + lambda * adv for the generator plus the discriminator's own loss: one backward pass
        trains both, since neither term's gradient reaches the other's parameters."""
        losses, used, out = self.position_outputs(patches, lengths)
        rec = masked_mean(losses, used)
        fake = self._judged(self.pixels(out))  # (B, T, L*P*P*C) ink in [0, 1], differentiable
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        adv = masked_mean(F.softplus(-functional_call(self.discriminator, frozen, (fake,))), used)
        weight = self._adaptive_weight(rec, adv)
        real_logits, fake_logits = self.discriminator(self.group(patches).to(fake.dtype)), self.discriminator(fake.detach())
        disc = masked_mean(F.softplus(-real_logits) + F.softplus(fake_logits), used) / 2
        self.last_parts = {"rec": rec.item(), "adv": adv.item(), "disc": disc.item(), "adv_weight": weight}
        return rec + weight * adv + disc

    def _judged(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's ink as the discriminator sees it (disc_sees): as emitted, binarised with the gradient
        of the probabilities (straight through), or the probabilities themselves."""
        if self.adversarial.disc_sees == "soft":
            return fake
        return fake + (self._binarised(fake) - fake).detach()

    def _adaptive_weight(self, rec: torch.Tensor, adv: torch.Tensor) -> float:
        """weight * |d rec / d W_head| / (|d adv / d W_head| + 1e-4), clamped to [0, 1e4]; 0 outside training."""
        if not (self.training and torch.is_grad_enabled()):
            return 0.0
        head = self.head.weight
        rec_grad, = torch.autograd.grad(rec, head, retain_graph=True)
        adv_grad, = torch.autograd.grad(adv, head, retain_graph=True)
        ratio = rec_grad.float().norm() / (adv_grad.float().norm() + 1e-4)
        return float(self.adversarial.weight * ratio.clamp(0, 1e4))

    @torch.no_grad()
    def discriminator_accuracy(self, patches: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
        """Shares of real positions judged real and of predicted positions judged fake, over the
        positions the lines cover."""
        _, used, out = self.position_outputs(patches, lengths)
        real = self.discriminator(self.group(patches).to(out.dtype)) > 0
        fake = self.discriminator(self._judged(self.pixels(out))) <= 0
        n = used.sum().clamp(min=1)
        return float((real & used).sum() / n), float((fake & used).sum() / n)
