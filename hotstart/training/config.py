"""The training settings every objective shares (TrainConfig), and the defaults of the line models.

One home for them: the loop (loop.py), every objective's run config and the grids read TrainConfig from here,
and the line models and their baselines start from line_train_defaults().
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import flag
from ..data.prepared import CURRICULUM_ORDERS
from ..errors import HotStartError

SCHEDULES = ("onecycle", "cosine", "linear")


@dataclass
class TrainConfig:
    """Optimisation, schedule, evaluation and stopping."""

    batch_size: int = field(default=128, metadata=flag(check="positive_int"))
    """Sequences per step (paper: 128)."""
    max_samples: int | None = field(default=None, metadata=flag(check="positive_int"))
    """Stop after this many training sequences; None trains until early stopping (or max_epochs)."""
    max_epochs: int | None = field(default=None, metadata=flag(check="positive_int"))
    """Stop after this many curriculum epochs; None for no limit."""
    lr_max: float = field(default=1.5e-3, metadata=flag(check="positive_float"))
    """Peak learning rate (paper: OneCycle max 1.5e-3)."""
    schedule: str = "onecycle"
    """onecycle (the paper's), cosine (linear warm-up, then cosine decay) or linear (linear warm-up, then linear
    decay; fine-tuning's pixel-m4 recipe)."""
    schedule_samples: int | None = field(default=None, metadata=flag(check="positive_int"))
    """Samples the lr schedule spans; None = 1,000,000 (~7,800 steps of 128). Our reading: the paper
    gives no span ("0.4% of the data" at 8,200 samples would put its run near 2M samples). It does not
    follow max_samples, so a shorter run is an exact prefix of the full-length run."""
    onecycle_pct_start: float = 0.3
    """OneCycle: fraction of the schedule spent rising to lr_max (PyTorch's default)."""
    onecycle_div: float = 25.0
    """OneCycle: start lr = lr_max / div. 25 is PyTorch's default and our reading; the paper quotes "lr
    2e-4 (OneCycle max 1.5e-3)", which div 7.5 would make the start."""
    onecycle_final_div: float = 1e4
    """OneCycle: final lr = start lr / final_div (PyTorch's default)."""
    warmup_samples: int = field(default=2048, metadata=flag(check="non_negative_int"))
    """cosine: linear warm-up length in samples."""
    min_lr_ratio: float = 0.1
    """cosine and linear: the lr decays to lr_max * min_lr_ratio."""
    weight_decay: float = 0.01
    """AdamW weight decay on matrices (paper: 0.01); biases, norms and embeddings are not decayed."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 = off)."""
    curriculum: bool = field(default=True, metadata=flag(negate=True))
    """Quadratic curriculum (paper): epoch e trains on 5000 + 918.37e + 18.74e^2 sequences."""
    curriculum_order: str = field(default="fresh", metadata=flag("curriculum", dest="curriculum_order"))
    """Which sequences a curriculum epoch takes: fresh (the first n(e) of a new permutation each epoch)
    or prefix (the first n(e) of one fixed order, reshuffled each epoch, so epoch e re-sees every
    sequence of the epochs before it; our reading of the paper's sample counts)."""
    balance_languages: bool = field(default=False, metadata=flag(both=True))
    """Sample the corpus's languages equally (a corpus prepared from several, PIXEL-M4's); needs
    curriculum off. One language: no effect."""
    eval_every: int = field(default=2048, metadata=flag(check="positive_int"))
    """Evaluate every this many samples up to dense_until (the hot-start window)."""
    dense_until: int = field(default=16384, metadata=flag(check="positive_int"))
    """End of the dense evaluation window, in samples."""
    eval_every_late: int = field(default=16384, metadata=flag(check="positive_int"))
    """Evaluate every this many samples after dense_until."""
    eval_at: list[int] = field(default_factory=list, metadata=flag(check="positive_int"))
    """Also evaluate at the first step whose samples reach each of these (say the paper's hot-start points
    4,096 / 6,152 / 8,200 / 10,248, which batches of 128 do not all land on)."""
    eval_sequences: int | None = field(default=None, metadata=flag(check="positive_int"))
    """Validation sequences per scheduled evaluation (the first N of the fixed set); None = all."""
    patience: int = field(default=7, metadata=flag(check="positive_int"))
    """Early stopping: evaluations without a lower validation loss before stopping (paper: 7)."""
    freeze_decoder: bool = False
    """Train only the input path and head (the paper's frozen-decoder ablation)."""
    precision: str = "auto"
    """auto, bf16, fp16 or fp32 (see precision.py)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N."""
    seed: int = 0
    """Seeds the weights and the training-sample order."""
    max_bad_steps: int = 20
    """Steps skipped for a non-finite loss or gradient before the run gives up as diverged."""
    tensorboard: bool = False
    """Also log every metrics row to TensorBoard event files in RUN/tensorboard/."""
    compile: bool = False
    """torch.compile the decoder (the glyph encoder keeps eager mode: its batch of distinct glyphs
    changes shape every step). bench/run.py measures whether it pays on your machine."""

    def validate(self) -> None:
        """Raise HotStartError for values out of range."""
        positive = ("batch_size", "eval_every", "eval_every_late", "lr_max")
        for name in positive:
            if getattr(self, name) <= 0:
                raise HotStartError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_samples", "max_epochs", "schedule_samples", "eval_sequences"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise HotStartError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if any(not isinstance(point, int) or point <= 0 for point in self.eval_at):
            raise HotStartError(f"--eval-at takes sample counts > 0, got {' '.join(map(str, self.eval_at))}")
        if self.curriculum_order not in CURRICULUM_ORDERS:
            raise HotStartError(f"unknown curriculum '{self.curriculum_order}'; choose one of {', '.join(CURRICULUM_ORDERS)}")
        if self.schedule not in SCHEDULES:
            raise HotStartError(f"unknown schedule '{self.schedule}'; choose one of {', '.join(SCHEDULES)}")
        if self.patience < 1:
            raise HotStartError(f"--patience must be at least 1, got {self.patience}")
        # below 1 these would start or end OneCycle above lr_max, or decay the cosine above it
        for name in ("onecycle_div", "onecycle_final_div"):
            if getattr(self, name) < 1:
                raise HotStartError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise HotStartError(f"--min-lr-ratio must be between 0 and 1, got {self.min_lr_ratio}")
        for name in ("weight_decay", "grad_clip", "max_bad_steps"):  # 0 turns each off; below 0 means nothing
            if not getattr(self, name) >= 0:
                raise HotStartError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(self, name)}")
        if not 0 < self.onecycle_pct_start < 1:
            raise HotStartError(f"--onecycle-pct-start must be between 0 and 1, got {self.onecycle_pct_start}")


def line_train_defaults() -> TrainConfig:
    """Training settings of the line models (mae, next-patch, pixar, dual) and of their index baseline, the character
    BERT, unless given; the family and autoregressive grids start from them too. Our CPU-scale reading. PIXEL-M4 trains 1M steps of
    256 lines; the paper summary gives no learning rate or schedule, so we use MAE's usual shape (linear
    warm-up, cosine decay) with a peak that learns within a CPU budget, no curriculum (HotStart's is
    about sequences of characters), the corpus's languages sampled equally (PIXEL-M4's), and a small fixed
    validation set evaluated every 512 lines."""
    return TrainConfig(batch_size=32, lr_max=5e-4, schedule="cosine", warmup_samples=1024, curriculum=False,
                       balance_languages=True, eval_every=512, dense_until=4096, eval_every_late=2048, eval_sequences=64)
