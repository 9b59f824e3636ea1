"""`hotstart sweep`: the paper's experiments as named grids of training runs, resumable.

A sweep folder holds
    data/             the prepared corpus (the built-in one, unless --data names another)
    runs/NAME/        one run folder per grid point (see training/loop.py); NAME spells out its settings
    throughput.json   efficiency grid: FLOPs per sample and alternating samples/s of every encoder
    sweep.json        the scale, the grids asked for, the commands that ran and the precision

Every run of a sweep trains in one precision, fixed when the sweep first starts (`auto` resolved
then) and kept by every later invocation, so a sweep resumed on another machine, where `auto` would
choose differently, still compares like with like.

Two protocols share every grid:
    hot    OneCycle with the paper's peak (our reading of its start, max/25, and span, 1M samples) stopped after the hot-start window,
           evaluated every `eval_every` samples: the hot-start table, Acc@8k and the ablations;
    final  trained to the scale's final budget (or early stopping): the final-accuracy tables.

Running the same command again skips finished runs and resumes a half-finished one from its last
evaluation, so a sweep that is killed (or outlives a session) loses at most one evaluation interval.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import load_yaml
from ..data.corpus import BUILTIN, INEWS
from ..data.holdout import HoldoutConfig
from ..data.prepared import PrepareConfig, PreparedCorpus, prepare
from ..errors import HotStartError
from ..models.decoder import decoder_size
from ..models.encoders import EncoderConfig
from ..models.hotstart_lm import InputConfig, ModelConfig
from ..render.glyph import RenderConfig
from ..training.checkpoint import read_json, write_json
from ..training.config import TrainConfig
from ..training.loop import DIVERGED, train
from ..training.precision import pick_device, pick_precision
from ..training.run import RunConfig
from .paper import HOT_POINTS, RESOLUTIONS

CROPS = (1.0, 0.8, 0.5)  # Vision-100% / -80% / -50%
ENCODERS = ("orig", "opt", "simp")


@dataclass(frozen=True)
class Scale:
    """How big every run of a sweep is: decoder, data shape, budgets, evaluation and seeds."""

    name: str
    size: str
    """Decoder size of every run except the decoder-size ablation."""
    seq_len: int
    """Characters per sequence when the sweep prepares the built-in corpus."""
    batch_size: int
    hot_samples: int
    """Length of the hot-start window (hot protocol)."""
    eval_every: int
    """Evaluation interval inside the hot-start window."""
    final_samples: int | None
    """Final protocol budget; the lr schedule spans it. None: the paper's schedule until early stopping."""
    eval_sequences: int | None
    """Validation sequences per evaluation (None = the whole fixed validation set)."""
    hot_seeds: tuple[int, ...]
    """Seeds of the hot-start runs (index, vision 8x8, vision 40x40): the band in the plots."""
    ablation_sizes: tuple[str, ...]
    """Decoder sizes the decoder-size ablation compares with `size`."""
    about: str
    paper_decoder_samples: int | None = None
    """explain grid, scales below the paper's decoder: the length of its gpt2-small runs (None: none)."""
    eval_points: tuple[int, ...] = ()
    """Evaluations besides every `eval_every`: each at the first step past it (TrainConfig.eval_at)."""


SCALES: dict[str, Scale] = {
    "smoke": Scale("smoke", size="tiny", seq_len=64, batch_size=32, hot_samples=1024, eval_every=256,
                   final_samples=2048, eval_sequences=64, hot_seeds=(0, 1, 2), ablation_sizes=("small-cpu",),
                   about="checks the machinery: every run for seconds; the numbers mean nothing"),
    "cpu": Scale("cpu", size="small-cpu", seq_len=128, batch_size=128, hot_samples=16384, eval_every=2048,
                 final_samples=24576, eval_sequences=512, hot_seeds=(0, 1, 2), ablation_sizes=("tiny", "medium-cpu"),
                 about="small-cpu decoder (4x256), hours on 2 CPU cores",
                 # the paper's 10,248 samples, rounded to the evaluation point 80 steps of 128 reach: a
                 # gpt2-small step takes ~55 s on 2 cores, so each such run costs over an hour
                 paper_decoder_samples=10_240),
    # the hot window ends at 10,368 samples, the first step of 128 past the paper's last hot-start point
    # (10,248), and the paper's points are evaluated themselves, at the first step past each
    "paper": Scale("paper", size="gpt2-small", seq_len=128, batch_size=128, hot_samples=10_368, eval_every=2048,
                   final_samples=None, eval_sequences=None, hot_seeds=(0, 1, 2), ablation_sizes=("small-cpu",),
                   about="the paper's protocol: GPT-2 small, early stopping, full validation set; for a GPU",
                   eval_points=HOT_POINTS),
}


@dataclass(frozen=True)
class RunSpec:
    """One grid point. Fields left at their defaults are the paper's settings."""

    protocol: str  # hot | final
    kind: str  # index | vision
    encoder: str = "simp"
    res: int = 8
    crop: float = 1.0
    seed: int = 0
    size: str | None = None  # None: the scale's decoder
    schedule: str = "paper"  # paper (OneCycle, max 1.5e-3) | warmup (short linear warm-up to 1e-3, cosine)
    embed_init_std: float = 0.02  # index only
    pixel_norm: str = "standardize"  # vision only
    output_norm: str = "layernorm"  # vision only
    # the hot-start investigation's candidates (grid `explain`); the defaults are the settings above
    encoder_norm: str = "group"  # vision, orig only
    encoder_size: str = "ours"  # vision
    pool: int = 4  # vision, opt/simp
    patch: int = 0  # vision, opt/simp
    input_scale: str = "none"  # vision
    center: bool = False  # vision
    tie_head: bool = False
    onecycle_div: float = 25.0  # paper schedule: start lr = 1.5e-3 / div
    span: int | None = None  # paper schedule: samples the OneCycle spans (None: our reading, 1,000,000)
    curriculum: str = "fresh"
    samples: int | None = None  # hot protocol: a shorter window than the scale's (explain's gpt2-small runs)
    holdout: float = 0.0  # share of characters never trained on (grid `unseen`)
    head: str = "linear"  # linear | glyph (vision: the glyph-tied head)
    # the hot start's controls (grid `controls`): pixels or parametrisation?
    glyph_permute: int | None = None  # vision: each character reads another's glyph (permutation seed)
    glyph_source: str = "font"  # vision: font | noise (each glyph's own pixels in a fixed random order)
    adapter_init_std: float = 0.0  # vision: the adapter's initial std (0: PyTorch's default)

    @property
    def name(self) -> str:
        """Folder name: the protocol, then every setting that differs from the paper's, then the seed."""
        if self.kind == "index":
            parts = [self.protocol, "index"] + ([f"emb{self.embed_init_std:g}"] if self.embed_init_std != 0.02 else [])
        else:
            parts = [self.protocol, self.encoder, f"{self.res}x{self.res}"]
            parts += [f"crop{self.crop:g}"] if self.crop != 1.0 else []
            parts += {"standardize": [], "raw": ["rawpix"], "position": ["pospix"]}[self.pixel_norm]
            parts += ["nonorm"] if self.output_norm != "layernorm" else []
            parts += [f"enc{self.encoder_norm}"] if self.encoder_norm != "group" else []
            parts += ["papersize"] if self.encoder_size != "ours" else []
            parts += [f"pool{self.pool}"] if self.pool != 4 else []
            parts += [f"patch{self.patch}"] if self.patch else []
            parts += ["idxscale"] if self.input_scale != "none" else []
            parts += ["centred"] if self.center else []
            parts += [f"perm{self.glyph_permute}"] if self.glyph_permute is not None else []
            parts += ["noise"] if self.glyph_source != "font" else []
            parts += [f"ainit{self.adapter_init_std:g}"] if self.adapter_init_std else []
        parts += ["tied"] if self.tie_head else []
        parts += [self.size] if self.size else []
        parts += [self.schedule] if self.schedule != "paper" else []
        parts += [f"div{self.onecycle_div:g}"] if self.onecycle_div != 25.0 else []
        parts += [f"span{self.span / 1e6:g}M"] if self.span else []
        parts += ["prefix"] if self.curriculum != "fresh" else []
        parts += ["glyphhead"] if self.head != "linear" else []
        parts += [f"held{self.holdout:g}"] if self.holdout else []
        return "-".join(parts + [f"s{self.seed}"])

    def run_config(self, scale: Scale, data: str) -> RunConfig:
        """The full RunConfig of this point at `scale` on the prepared corpus `data`."""
        if self.kind == "index":
            inp = InputConfig(kind="index", embed_init_std=self.embed_init_std)
        else:
            encoder = EncoderConfig(name=self.encoder, size=self.encoder_size, pool=self.pool, patch=self.patch,
                                    norm=self.encoder_norm, adapter_init_std=self.adapter_init_std)
            inp = InputConfig(kind="vision", encoder=encoder, render=RenderConfig(res=self.res, crop=self.crop),
                              pixel_norm=self.pixel_norm, output_norm=self.output_norm, input_scale=self.input_scale,
                              center=self.center, glyph_permute=self.glyph_permute, glyph_source=self.glyph_source)
        tc = TrainConfig(batch_size=scale.batch_size, eval_sequences=scale.eval_sequences, seed=self.seed,
                         eval_every=scale.eval_every, dense_until=self.samples or scale.hot_samples, onecycle_div=self.onecycle_div,
                         schedule_samples=self.span, curriculum_order=self.curriculum, eval_at=list(scale.eval_points))
        if self.protocol == "hot":
            tc.max_samples = self.samples or scale.hot_samples
        elif scale.final_samples is not None:  # a fixed budget: the schedule anneals within it
            tc.max_samples = tc.schedule_samples = scale.final_samples
        if self.schedule == "warmup":
            tc.schedule, tc.lr_max, tc.warmup_samples = "cosine", 1e-3, scale.eval_every
            tc.schedule_samples = tc.max_samples
        model = ModelConfig(vocab_size=0, input=inp, decoder=decoder_size(self.size or scale.size), tie_head=self.tie_head,
                            head=self.head)
        return RunConfig(data=data, model=model, train=tc, holdout=HoldoutConfig(share=self.holdout))


def _index(protocol: str, seed: int = 0, **kw: Any) -> RunSpec:
    return RunSpec(protocol, "index", seed=seed, **kw)


def _vision(protocol: str, res: int = 8, seed: int = 0, **kw: Any) -> RunSpec:
    return RunSpec(protocol, "vision", res=res, seed=seed, **kw)


def grid_rq1(scale: Scale) -> list[RunSpec]:
    """RQ1, is vision sufficient: final accuracy of index vs vision 8x8."""
    return [_index("final"), _vision("final", 8)]


def grid_rq2(scale: Scale) -> list[RunSpec]:
    """RQ2, the hot start: index, vision 8x8 and 40x40 over the hot-start window, every hot seed."""
    return [spec for seed in scale.hot_seeds
            for spec in (_index("hot", seed), _vision("hot", 8, seed), _vision("hot", 40, seed))]


def grid_rq3(scale: Scale) -> list[RunSpec]:
    """RQ3, how low the resolution can go: final accuracy at every resolution (and the index row)."""
    return [_index("final")] + [_vision("final", res) for res in RESOLUTIONS]


def grid_rq4(scale: Scale) -> list[RunSpec]:
    """RQ4, occlusion: final accuracy at every crop x resolution (and the index row)."""
    return [_index("final")] + [_vision("final", res, crop=crop) for crop in CROPS for res in RESOLUTIONS]


def grid_efficiency(scale: Scale) -> list[RunSpec]:
    """Index vs the three encoders at 8x8: Acc@8k (hot protocol) and final accuracy."""
    return [spec for protocol in ("hot", "final")
            for spec in [_index(protocol)] + [_vision(protocol, 8, encoder=name) for name in ENCODERS]]


def grid_ablations(scale: Scale) -> list[RunSpec]:
    """What drives the hot start: each factor varied alone over the hot-start window (seed 0)."""
    runs = [_index("hot"), _vision("hot", 8)]  # the reference pair
    runs += [_index("hot", schedule="warmup"), _vision("hot", 8, schedule="warmup")]
    runs += [_index("hot", embed_init_std=std) for std in (0.2, 1.0)]
    runs += [_vision("hot", 8, pixel_norm="raw"), _vision("hot", 8, output_norm="none")]
    runs += [_vision("hot", 8, encoder=name) for name in ("opt", "orig")]
    runs += [spec for size in scale.ablation_sizes for spec in (_index("hot", size=size), _vision("hot", 8, size=size))]
    return runs


def grid_explain(scale: Scale) -> list[RunSpec]:
    """What the hot start needs: the reference pair, then each candidate setting over the hot-start
    window (seed 0), with an index counterpart wherever the setting applies to index too."""
    runs = [_index("hot"), _vision("hot", 8)]
    # 1. the encoder the paper most likely reports (ResNet), with and without our output LayerNorm
    runs += [_vision("hot", 8, encoder="orig"), _vision("hot", 8, encoder="orig", output_norm="none")]
    # 2. normalisation inside the ResNet: a standard ResNet's BatchNorm, or none
    runs += [_vision("hot", 8, encoder="orig", encoder_norm=norm) for norm in ("batch", "none")]
    # 3. encoders of the paper's size; 40x40 without squeezing it to an 8x8 grid
    runs += [_vision("hot", 8, encoder=name, encoder_size="paper") for name in ("simp", "opt", "orig")]
    runs += [_vision("hot", 40, patch=1, pool=0)]
    # ... which came within 1 pp of a hot start at cpu scale (ahead of index by 1.46 pp at 8,192
    # samples, short of the rule's ratio of 1.5), so it gets every hot seed, as does its index pair
    runs += [spec for seed in scale.hot_seeds[1:] for spec in (_index("hot", seed), _vision("hot", 40, seed, patch=1, pool=0))]
    # 4. the paper's lr of 2e-4 as OneCycle's start, over our span and over ~2M samples ("0.4% of the data")
    runs += [spec for kw in ({"onecycle_div": 7.5}, {"onecycle_div": 7.5, "span": 2_000_000})
             for spec in (_index("hot", **kw), _vision("hot", 8, **kw))]
    # 5. the curriculum as a growing prefix; 6. a tied head
    runs += [_index("hot", curriculum="prefix"), _vision("hot", 8, curriculum="prefix")]
    runs += [_index("hot", tie_head=True), _vision("hot", 8, tie_head=True)]
    # 7. scale and spread of what the decoder receives
    runs += [_vision("hot", 8, input_scale="index-init"), _vision("hot", 8, pixel_norm="position"),
             _vision("hot", 8, center=True)]
    # 8. the paper's decoder, where the scale's is smaller: index, orig 8x8, and the best of 1-7 at cpu
    # scale (40x40 not squeezed to an 8x8 grid: report.md, the explain table), last as they cost the most
    if scale.paper_decoder_samples:
        big = {"size": "gpt2-small", "samples": scale.paper_decoder_samples}
        runs += [_index("hot", **big), _vision("hot", 8, encoder="orig", **big), _vision("hot", 40, patch=1, pool=0, **big)]
        # ... where 40x40 not squeezed met the rule at 4,096 samples on seed 0 (8.89% against index's 5.47%),
        # so it gets every hot seed, as does its index pair; over two hours each on 2 cores, so last of all
        runs += [spec for seed in scale.hot_seeds[1:]
                 for spec in (_index("hot", seed, **big), _vision("hot", 40, seed, patch=1, pool=0, **big))]
    else:  # the scale's decoder is the paper's: orig 8x8 (row 1 here) gets every hot seed, as row 8 asks
        runs += [_vision("hot", 8, seed, encoder="orig") for seed in scale.hot_seeds[1:]]
    return runs


UNPOOLED_40 = {"res": 40, "patch": 1, "pool": 0}
"""The setting with the early lead (explain grid: 40x40 not squeezed to an 8x8 grid), the controls' reference."""
PERMUTE_SEED = 1
"""Seed of the controls' glyph permutation (any fixed one: the same for every run seed)."""
INDEX_ADAM_STD = 0.02
"""--adapter-init-std that gives the adapter the index table's relative Adam step (wte's init std)."""


def grid_controls(scale: Scale) -> list[RunSpec]:
    """Pixels or parametrisation: the 40x40-unsqueezed reference and index, then each control of the same
    model, every hot seed: the glyphs permuted among the characters, noise images with each glyph's ink, and
    the adapter started at the index table's scale. Where the scale's decoder is smaller than GPT-2 small,
    the permuted glyphs at gpt2-small too (seed 0, then every hot seed as the rule decided; the explain grid has
    its reference and index there), last as they cost the most."""
    controls = ({"glyph_permute": PERMUTE_SEED}, {"glyph_source": "noise"}, {"adapter_init_std": INDEX_ADAM_STD})
    runs = []
    for seed in scale.hot_seeds:
        runs += [_index("hot", seed), _vision("hot", seed=seed, **UNPOOLED_40)]
        runs += [_vision("hot", seed=seed, **UNPOOLED_40, **control) for control in controls]
    if scale.paper_decoder_samples:
        big = {"size": "gpt2-small", "samples": scale.paper_decoder_samples}
        runs += [_index("hot", **big), _vision("hot", **UNPOOLED_40, **big),
                 _vision("hot", glyph_permute=PERMUTE_SEED, **UNPOOLED_40, **big)]
        # ... whose lead over index at 8,192 samples on seed 0 (+4.23 pp: 13.60% against 9.38%) was within 1 pp of
        # the reference's (+2.89 over three seeds; +4.05 on seed 0), so by the rule it gets every hot seed
        runs += [_vision("hot", seed=seed, glyph_permute=PERMUTE_SEED, **UNPOOLED_40, **big) for seed in scale.hot_seeds[1:]]
    return runs


UNSEEN_SHARE = 0.05
"""Share of the vocabulary held out in the `unseen` grid (the issue's "say 5%")."""


def grid_unseen(scale: Scale) -> list[RunSpec]:
    """Characters never trained on: index, vision 8x8 and vision with the glyph-tied head, each with 5% of
    the characters held out, at the final protocol's budget; one seed (the first of --seeds)."""
    seed = scale.hot_seeds[0]
    return [_index("final", seed, holdout=UNSEEN_SHARE), _vision("final", 8, seed, holdout=UNSEEN_SHARE),
            _vision("final", 8, seed, holdout=UNSEEN_SHARE, head="glyph")]


def grid_paper(scale: Scale) -> list[RunSpec]:
    """Everything, most telling first: the hot start, RQ1, the ablations, efficiency, RQ3/RQ4."""
    return grid_rq2(scale) + grid_rq1(scale) + grid_ablations(scale) + grid_efficiency(scale) + grid_rq4(scale)


GRIDS: dict[str, Callable[[Scale], list[RunSpec]]] = {
    "rq1": grid_rq1, "rq2": grid_rq2, "rq3": grid_rq3, "rq4": grid_rq4,
    "efficiency": grid_efficiency, "ablations": grid_ablations, "paper": grid_paper, "explain": grid_explain,
    "unseen": grid_unseen, "controls": grid_controls,
}


def grid_runs(grid: str, scale: Scale, seeds: tuple[int, ...] | None = None) -> list[RunSpec]:
    """The grid's runs in order, without duplicates; `seeds` replaces the hot-start seeds."""
    if grid not in GRIDS:
        raise HotStartError(f"unknown grid '{grid}'; choose one of {', '.join(GRIDS)}")
    if seeds is not None:
        scale = replace(scale, hot_seeds=tuple(seeds))
    unique: dict[str, RunSpec] = {}
    for spec in GRIDS[grid](scale):
        unique.setdefault(spec.name, spec)
    return list(unique.values())


def get_scale(name: str) -> Scale:
    """The named scale, or a HotStartError listing the names."""
    if name not in SCALES:
        raise HotStartError(f"unknown scale '{name}'; choose one of {', '.join(SCALES)}")
    return SCALES[name]


@dataclass
class SweepConfig:
    """What `hotstart sweep` runs."""

    grid: str
    out: str
    scale: str = "cpu"
    data: str | None = None
    """A folder from `hotstart prepare`; None prepares the built-in corpus into OUT/data."""
    seeds: tuple[int, ...] | None = None
    """Seeds of the hot-start runs (default: the scale's)."""
    only: list[str] = field(default_factory=list)
    """Run only the runs whose names contain one of these strings."""
    throughput_repeats: int = 5
    """Efficiency grid: alternating timing rounds per encoder."""
    device: str = "auto"
    precision: str = "auto"


def corpus_version(record: dict[str, Any] | None, corpus: str = INEWS) -> int:
    """The version of the built-in corpus a sweep or grid reads: the one its record pins, version 1 for a record
    made before versions existed (its runs read that text), the newest for a new one. A grid keeps its version
    until its references are rerun, so that its comparisons stay like for like."""
    if record is None:
        return BUILTIN[corpus].version
    return record.get("corpus_version", 1)


def prepared_corpus(given: str | None, out: str | Path, seq_len: int, scale_name: str, progress: bool,
                    version: int | None = None, builtin: str = INEWS) -> Path:
    """The corpus every run trains on: `given` (--data), or the built-in corpus `builtin` in `version` (None: its
    newest) prepared once into OUT/data."""
    if given:
        PreparedCorpus.load(given)  # a clear error now rather than in the first run
        return Path(given).resolve()
    data = Path(out) / "data"
    if not (data / "meta.json").exists():
        print(f"preparing the built-in corpus into {data} (seq_len {seq_len})", file=sys.stderr)
        prepare(PrepareConfig(corpus=builtin, seq_len=seq_len, corpus_version=version), data, progress=progress,
                overwrite=True)
    meta = read_json(data / "meta.json", "prepared corpus")
    if meta["config"]["seq_len"] != seq_len:
        raise HotStartError(f"{data} was prepared with seq_len {meta['config']['seq_len']}, scale {scale_name} "
                            f"uses {seq_len}; use another --out for this scale")
    prepared = meta["config"].get("corpus_version") or 1
    if version is not None and prepared != version:
        raise HotStartError(f"{data} holds version {prepared} of the built-in corpus, and the runs of {out} read version "
                            f"{version}; delete {data} to prepare it again")
    return data.resolve()


def sweep_precision(out: Path, asked: str, device: str, record_name: str = "sweep.json") -> str:
    """The precision every run in `out` trains in: the one its record (`record_name`), its finished runs or its
    half-finished runs record, else `asked` resolved on this machine. Asking for a different one than the
    sweep's is an error. (A half-finished run counts: the probe may pick otherwise on the next machine, and
    resuming must not be refused, nor the run's first part thrown away, for that.)"""
    used = set()
    record_path = out / record_name
    if record_path.exists():
        used.add(read_json(record_path, "grid record").get("precision"))
    for summary in sorted(out.glob("runs/*/summary.json")):
        used.add(read_json(summary, "run summary").get("environment", {}).get("precision"))
    for state in sorted(out.glob("runs/*/checkpoints/state.safetensors")):
        run_dir = state.parent.parent
        if not (run_dir / "summary.json").exists():
            used.add(_started_precision(run_dir))
    used.discard(None)
    used.discard("auto")  # older versions saved the precision as asked
    if not used:
        return pick_precision(asked, pick_device(device))
    if len(used) > 1:
        raise HotStartError(f"the runs in {out} trained in different precisions ({', '.join(sorted(used))}), so they "
                            "are not comparable; retrain the odd ones out, or use another --out")
    pinned = used.pop()
    if asked not in ("auto", pinned):
        raise HotStartError(f"the runs in {out} trained in {pinned}, and a sweep's runs must share one precision to be "
                            f"comparable; pass --precision {pinned} (or auto), or use another --out for {asked}")
    return pinned


def _started_precision(run_dir: Path) -> str | None:
    """The precision a half-finished run was started with (as asked: `auto` from older versions)."""
    try:
        return load_yaml(run_dir / "config.yaml").get("train", {}).get("precision")
    except (HotStartError, OSError):
        return None


def _record(out: Path, cfg: SweepConfig, scale: Scale, command: str, specs: list[RunSpec], precision: str,
            version: int | None) -> None:
    """Add this invocation to sweep.json: its command (the report prints them), its runs' grid points, the
    sweep's precision and the version of the built-in corpus its runs read (None: its own --data)."""
    path = out / "sweep.json"
    record = read_json(path, "sweep record") if path.exists() else {"scale": scale.name, "commands": [], "grids": []}
    if record["scale"] != scale.name:
        raise HotStartError(f"{out} holds a sweep at scale '{record['scale']}', not '{scale.name}'; use another --out")
    record["precision"] = precision
    if version is not None:
        record["corpus_version"] = version
    record["scale_settings"] = {k: v for k, v in vars(scale).items()}
    if command not in record["commands"]:
        record["commands"].append(command)
    if cfg.grid not in record["grids"]:
        record["grids"].append(cfg.grid)
    record.setdefault("runs", {}).update({spec.name: asdict(spec) for spec in specs})
    write_json(path, record)


def _record_embeddings(run_dir: Path) -> None:
    """Keep the input-vector spread at the starting and the best weights in the run folder, while its
    checkpoints are still there (they are not committed with results); a failure only warns."""
    from .embeddings import run_embedding_spread

    for checkpoint in ("init", "best"):
        try:
            run_embedding_spread(run_dir, checkpoint, progress=False, save=True)
        except HotStartError as exc:
            print(f"warning: no embedding statistics for {run_dir.name} ({checkpoint}): {exc}", file=sys.stderr)


def run_sweep(cfg: SweepConfig, progress: bool = True, command: str = "") -> list[dict[str, Any]]:
    """Train every run of the grid that has not finished; return one status row per run."""
    scale = get_scale(cfg.scale)
    specs = grid_runs(cfg.grid, scale, cfg.seeds)
    if cfg.only:
        specs = [s for s in specs if any(part in s.name for part in cfg.only)]
        if not specs:
            raise HotStartError(f"--only {' '.join(cfg.only)} matches no run of grid {cfg.grid}; "
                                f"`hotstart sweep {cfg.grid} --list` shows the names")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    precision = sweep_precision(out, cfg.precision, cfg.device)
    record_path = out / "sweep.json"
    version = corpus_version(read_json(record_path, "sweep record") if record_path.exists() else None)
    data = prepared_corpus(cfg.data, cfg.out, scale.seq_len, scale.name, progress, None if cfg.data else version)
    _record(out, cfg, scale, command or f"hotstart sweep {cfg.grid} --scale {scale.name} --out {cfg.out}", specs,
            precision, None if cfg.data else version)
    print(f"sweep precision {precision} (every run of {out} trains in it)", file=sys.stderr)
    statuses = []
    start = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        run_dir = out / "runs" / spec.name
        if (run_dir / "summary.json").exists():
            reason = read_json(run_dir / "summary.json", "run summary").get("stop_reason")
            statuses.append({"run": spec.name, "status": "done before" if reason not in DIVERGED else
                             f"failed before ({reason}); delete {run_dir} to train it again"})
            continue
        run = spec.run_config(scale, str(data))
        run.train.device, run.train.precision = cfg.device, precision
        resume = (run_dir / "checkpoints" / "state.safetensors").exists()
        if resume and (started := _started_precision(run_dir)) != precision:
            print(f"{spec.name} was started with precision {started}, not the sweep's {precision}; "
                  "training it again from zero", file=sys.stderr)
            resume = False
        print(f"[{i}/{len(specs)}] {'resuming' if resume else 'training'} {spec.name} "
              f"({time.perf_counter() - start:,.0f} s into this sweep)", file=sys.stderr, flush=True)
        try:
            train(run, run_dir, progress=progress, overwrite=not resume, resume=resume)
            statuses.append({"run": spec.name, "status": "trained"})
            _record_embeddings(run_dir)
        except HotStartError as exc:  # one failed run (say a diverged one) must not end the sweep
            print(f"run {spec.name} failed: {exc}", file=sys.stderr)
            statuses.append({"run": spec.name, "status": f"failed: {exc}"})
    if cfg.grid in ("efficiency", "paper") and not cfg.only and not (out / "throughput.json").exists():
        from .throughput import measure_efficiency

        print("measuring FLOPs and alternating training throughput of index and every encoder", file=sys.stderr)
        result = measure_efficiency(scale, data, repeats=cfg.throughput_repeats, device=cfg.device,
                                    precision=precision, progress=progress)
        write_json(out / "throughput.json", result)
    failed = [s for s in statuses if s["status"].startswith("failed")]
    print(f"sweep {cfg.grid} ({scale.name}): {len(specs) - len(failed)} of {len(specs)} runs finished"
          f"{f', {len(failed)} failed' if failed else ''}; {time.perf_counter() - start:,.0f} s", file=sys.stderr)
    for s in failed:
        print(f"  {s['run']}: {s['status']}", file=sys.stderr)
    return statuses


def list_runs(grid: str, scale_name: str, out: str | None = None, seeds: tuple[int, ...] | None = None) -> str:
    """A table of the grid's runs and, given a sweep folder, how far each has got."""
    scale = get_scale(scale_name)
    return list_named_runs([spec.name for spec in grid_runs(grid, scale, seeds)], out)


def run_state(run_dir: Path) -> str:
    """How far a run folder has got: done, N samples, started, or '' (not started)."""
    if (run_dir / "summary.json").exists():
        return "done"
    if (run_dir / "metrics.jsonl").exists():
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
        return f"{rows[-1]['samples']:,} samples" if rows else "started"
    return ""


def list_named_runs(names: list[str], out: str | None = None) -> str:
    """One line per run name and, given a grid folder, how far its run has got (run_state)."""
    return "\n".join(f"{name:40s} {run_state(Path(out) / 'runs' / name) if out else ''}".rstrip() for name in names)
