"""`hotstart sweep family`: the model families side by side, on the same text, budget and task.

    index    HotStart's index LM: character IDs into a GPT-2 decoder, next-character prediction
    vision   HotStart's vision LM: each character's 8x8 glyph through the simp encoder into the same decoder
    mae      PIXEL-M4's pixel masked autoencoder: each sequence drawn as one line of 16x16 patches
    mlm      a character BERT with the MAE encoder's shape: the pixel encoder's index baseline

Every member pretrains on the same prepared sequences, as many of them, with the same training settings
(the MAE's: batch 32, cosine 5e-4 over the budget, no curriculum), at the scale's size of each family.
Then each is fine-tuned on the task twice over: a linear probe at every point of a learning curve and
full fine-tuning at fewer points, each point with the scale's seeds (tasks/classification.py).

A family folder holds
    data/                        the prepared corpus (the built-in one, unless --data names another)
    runs/family-MEMBER/          the pretraining run (training/loop.py), with
        cost.json                parameters and training FLOPs per sample
        probe/, full/            the fine-tunings (finetune.json, results.jsonl)
    family.json                  the scale, the commands and the precision every member trains in

Rerunning the command skips what is done and resumes what is not. Result folders are committed
without their checkpoints, so a member whose fine-tuning is unfinished when its checkpoint is gone is
pretrained again (the same seed and settings) before its fine-tuning goes on.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..analysis.reconstruction import READ_BACK_LINES
from ..data.corpus import INEWS
from ..data.prepared import PreparedCorpus
from ..errors import HotStartError
from ..models.char_bert import CharBertConfig
from ..models.decoder import decoder_size
from ..models.hotstart_lm import InputConfig, ModelConfig
from ..models.mae import MAEConfig
from ..render.line import LineRenderConfig
from ..tasks.classification import FinetuneConfig, finetune
from ..training.checkpoint import read_json, write_json
from ..training.config import TrainConfig, line_train_defaults
from ..training.mae_run import MAERunConfig
from ..training.mlm_run import MLMRunConfig
from ..training.run import RunConfig
from .grid import open_member_grid

MEMBERS = ("mae", "mae-cells", "mlm", "index", "vision")
"""mae-cells is our control, not PIXEL-M4's: the same MAE over lines drawn one character per patch, so that a
line of English fills its grid as a Chinese one does and each masked patch is one whole glyph (a cloze over glyph
images, the task the character BERT solves over IDs); it tells "the MAE cannot learn here" from "running text is
too hard at this budget"."""
MAES = ("mae", "mae-cells")
"""The members whose reconstructions are read back (analysis/reconstruction.py)."""
MODES = ("probe", "full")


@dataclass(frozen=True)
class FamilyScale:
    """How big the comparison is: model size, data shape, pretraining budget and fine-tuning points."""

    name: str
    size: str
    """Every member's size (a decoder size and an MAE/BERT size of the same name: tiny | small-cpu)."""
    seq_len: int
    """Characters per sequence, and per document at fine-tuning."""
    pretrain_samples: int
    eval_every: int
    eval_sequences: int
    seeds: tuple[int, ...]
    """Fine-tuning seeds (every member pretrains once, with seed 0)."""
    probe_examples: tuple[int, ...]
    """Learning-curve points of the linear probe (training documents; more than there are = all)."""
    full_examples: tuple[int, ...]
    """Points of full fine-tuning (far dearer on a CPU)."""
    members: tuple[str, ...]
    about: str
    batch_size: int = 32
    """Sequences per optimiser step of every member's pretraining."""
    current: bool = False
    """The MAE's lines drawn as new runs draw them (ink kept inside the line) and full fine-tuning by PIXEL-M4's
    recipe (tasks/classification.py); False keeps the settings the scale's first runs trained with."""


FAMILY_SCALES: dict[str, FamilyScale] = {
    "smoke": FamilyScale("smoke", size="tiny", seq_len=64, pretrain_samples=256, eval_every=128, eval_sequences=32,
                         seeds=(0,), probe_examples=(64,), full_examples=(64,), members=MEMBERS,
                         about="checks the machinery: seconds per member; the numbers mean nothing"),
    "demo": FamilyScale("demo", size="tiny", seq_len=128, pretrain_samples=4096, eval_every=1024, eval_sequences=128,
                        seeds=(0, 1, 2), probe_examples=(256, 5355), full_examples=(), members=("mae", "mlm"),
                        about="hotstart demo --family: a tiny MAE and its character BERT, minutes on 2 CPU cores"),
    # planned in optimiser steps: 6,000 of 16 sequences, about half an hour per member alone on 2 cores (the first
    # plan, 512 steps of 32, left the MAE at its floor: the report of docs/results/family)
    "cpu": FamilyScale("cpu", size="small-cpu", seq_len=128, pretrain_samples=96_000, eval_every=8_000, eval_sequences=256,
                       seeds=(0, 1, 2), probe_examples=(64, 256, 1024, 5355), full_examples=(1024,), members=MEMBERS,
                       about="small-cpu members (4 x 256), 6,000 steps of 16 sequences each; hours on 2 CPU cores",
                       batch_size=16, current=True),
}


def family_scale(name: str) -> FamilyScale:
    """The named family scale, or a one-line error."""
    if name not in FAMILY_SCALES:
        raise HotStartError(f"the family grid has no scale '{name}'; choose one of {', '.join(FAMILY_SCALES)}")
    return FAMILY_SCALES[name]


def _square_at_least(n: int) -> int:
    """The smallest square number >= n (the MAE lays a line out on a square grid)."""
    return math.isqrt(n - 1) ** 2 if math.isqrt(n - 1) ** 2 == n else (math.isqrt(n - 1) + 1) ** 2


def member_config(member: str, scale: FamilyScale, data: str) -> RunConfig | MAERunConfig | MLMRunConfig:
    """The pretraining run of `member`: the same sequences, budget and training settings for all."""
    tc: TrainConfig = replace(line_train_defaults(), batch_size=scale.batch_size, max_samples=scale.pretrain_samples,
                              schedule_samples=scale.pretrain_samples, eval_every=scale.eval_every,
                              dense_until=scale.pretrain_samples, eval_every_late=scale.eval_every,
                              eval_sequences=scale.eval_sequences, patience=10**6)  # the whole budget, for all alike
    if member in ("index", "vision"):
        return RunConfig(data=data, model=ModelConfig(vocab_size=0, input=InputConfig(kind=member),
                                                      decoder=decoder_size(scale.size)), train=tc)
    if member in ("mae", "mae-cells"):
        # a sequence and its end patch fit one line; Chinese characters take about a patch each
        line = LineRenderConfig(max_patches=_square_at_least(scale.seq_len + 1), cell="char" if member == "mae-cells" else "free",
                                **({"edge": "fit"} if scale.current else {}))
        return MAERunConfig(data=data, model=MAEConfig(size=scale.size, line=line), train=tc)
    if member == "mlm":
        return MLMRunConfig(data=data, model=CharBertConfig(size=scale.size), train=tc)
    raise HotStartError(f"unknown family member '{member}'; choose from {', '.join(MEMBERS)}")


def finetune_config(scale: FamilyScale, mode: str, seq_len: int, precision: str, device: str,
                    task: str) -> FinetuneConfig:
    """A member's fine-tuning in `mode` at the scale's points and seeds, reading as many characters of a
    document as the corpus's sequences hold."""
    examples = scale.probe_examples if mode == "probe" else scale.full_examples
    recipe = "pixel-m4" if scale.current and mode == "full" else "ours"
    return FinetuneConfig(task=task, seeds=list(scale.seeds), train_examples=list(examples), max_chars=seq_len,
                          mode=mode, precision=precision, device=device, recipe=recipe)


def _read_back_reconstructions(run_dir: Path, count: int) -> None:
    """readback.json: `count` of the MAE's reconstructed lines read back by OCR (analysis/reconstruction.py), where the ocr extra
    is installed; without it, a note and nothing written (the report says it was not measured)."""
    from ..analysis.reconstruction import reconstruction_readback

    print(f"reading {run_dir.name}'s reconstructions back by OCR", file=sys.stderr, flush=True)
    try:
        write_json(run_dir / "readback.json", reconstruction_readback(run_dir, count))
    except HotStartError as exc:
        print(f"note: {exc}; the report shows no read-back for {run_dir.name}", file=sys.stderr)


def _finetune_done(folder: Path, cfg: FinetuneConfig) -> bool:
    """True when `folder` holds a finished fine-tuning with exactly these settings."""
    if not (folder / "finetune.json").is_file() or not (folder / "settings.json").is_file():
        return False
    return read_json(folder / "settings.json", "fine-tuning settings").get("config") == asdict(cfg)


def training_cost(cfg: Any, corpus: PreparedCorpus) -> dict[str, Any]:
    """Parameters and FLOPs per sample of one training step (forward and backward, counted by torch on a
    real batch of 4 sequences), as the efficiency grid counts them."""
    import torch

    from ..training.loop import OBJECTIVES
    from .throughput import count_flops

    objective = OBJECTIVES[cfg.objective](cfg, corpus)
    objective.check()
    torch.manual_seed(0)
    model = objective.build_model(progress=False)
    batch = objective.batch(corpus.train_index[:4], step=0)
    flops = count_flops(lambda: objective.loss(model, batch).backward())
    counts = objective.parameter_counts(model)
    return {"parameters": counts, "train_flops_per_sample": flops // 4}


def run_family(out: str | Path, scale_name: str = "cpu", data: str | None = None, task: str | None = "inews-sentiment",
               members: list[str] | None = None, precision: str = "auto", device: str = "auto", progress: bool = True,
               command: str = "", corpus: str = INEWS) -> list[dict[str, Any]]:
    """Pretrain and fine-tune every member not yet done; return one status row per member. Over a built-in corpus
    other than inews, whose documents the inews task is not in the language of, the members only pretrain unless
    `task` names a task folder."""
    from ..training.loop import train

    scale = family_scale(scale_name)
    chosen = members or list(scale.members)
    for member in chosen:
        if member not in MEMBERS:
            raise HotStartError(f"unknown family member '{member}'; choose from {', '.join(MEMBERS)}")
    grid = open_member_grid(out, "family", "family.json", scale.name, scale.seq_len, data, precision, device, progress,
                            command, corpus, asdict(scale))
    if corpus != INEWS and not data and task == "inews-sentiment":
        task = None  # a Chinese task for a model of another language: pretraining only
    corpus, corpus_dir, pinned, out = grid.corpus, grid.corpus_dir, grid.precision, grid.out
    grid.save(task=task, seq_len=corpus.seq_len, scale_settings=asdict(scale))
    statuses = []
    for member in chosen:
        run_dir = out / "runs" / f"family-{member}"
        cfg = member_config(member, scale, str(corpus_dir))
        cfg.train.precision, cfg.train.device = pinned, device
        tunings = [(mode, finetune_config(scale, mode, corpus.seq_len, pinned, device, task)) for mode in MODES
                   if task and (scale.probe_examples if mode == "probe" else scale.full_examples)]
        lines_read = min(READ_BACK_LINES, scale.eval_sequences // 4)  # smoke: 8 lines
        if (run_dir / "summary.json").is_file() and all(_finetune_done(run_dir / mode, ft) for mode, ft in tunings):
            if member in MAES and not (run_dir / "readback.json").is_file() and (run_dir / "checkpoints").is_dir():
                _read_back_reconstructions(run_dir, lines_read)  # a run finished before the read-back existed
            statuses.append({"member": member, "status": "done before"})
            continue
        has_weights = (run_dir / "checkpoints" / "best.safetensors").is_file()
        if not ((run_dir / "summary.json").is_file() and has_weights):
            resume = (run_dir / "checkpoints" / "state.safetensors").is_file() and not (run_dir / "summary.json").is_file()
            if (run_dir / "summary.json").is_file():
                print(f"{run_dir.name}: its checkpoints are gone (a committed result folder); pretraining it again "
                      "to fine-tune it", file=sys.stderr)
            print(f"pretraining {run_dir.name} ({scale.pretrain_samples:,} sequences)", file=sys.stderr, flush=True)
            train(cfg, run_dir, progress=progress, overwrite=not resume, resume=resume)
        if not (run_dir / "cost.json").is_file():
            write_json(run_dir / "cost.json", training_cost(cfg, corpus))
        if member in MAES and not (run_dir / "readback.json").is_file():
            _read_back_reconstructions(run_dir, lines_read)
        for mode, ft in tunings:
            print(f"fine-tuning {run_dir.name} ({mode})", file=sys.stderr, flush=True)
            finetune(run_dir, ft, run_dir / mode, progress=progress)
        statuses.append({"member": member, "status": "done"})
    return statuses
