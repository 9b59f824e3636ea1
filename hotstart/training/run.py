"""What a run is: its configuration, the files that define it, and how it is rebuilt from its folder.

The training loop (loop.py) writes a run; everything that reads one back (evaluation, export,
embedding statistics, the report) needs only this module, so none of them imports the loop.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import flag, from_dict, save_yaml, to_dict
from ..data.holdout import HoldoutConfig
from ..data.prepared import (
    SPECIALS,
    PreparedCorpus,
    Vocab,
)
from ..errors import HotStartError
from ..models.encoders import patch_stride
from ..models.hotstart_lm import (
    HotStartLM,
    InputConfig,
    ModelConfig,
    control_bank,
    glyph_bank,
)
from ..render.glyph import RenderConfig
from .checkpoint import (
    load_weights,
    read_json,
    write_json,
)
from .config import TrainConfig


@dataclass
class RunConfig:
    """A whole run: which prepared corpus, which model, how to train it."""

    data: str = field(metadata=flag(by_hand=True))
    """Folder written by `hotstart prepare`."""
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    """Characters never trained on (data/holdout.py); none by default."""
    objective: str = field(default="next-char", metadata=flag(cli=False))
    """What the run learns (training/objective.py); next-char: HotStart's next-character prediction."""


def build_model(cfg: ModelConfig, vocab: Vocab, progress: bool = True, mix: bool = True) -> HotStartLM:
    """The model for `cfg`, with its glyph bank rendered (or loaded from the cache) for vision, and with
    `mix`, the banks of the fonts training mixes in (--mix-font; a trained model reads the primary's).
    A control run (--glyph-permute, --glyph-source noise) reads every bank through the same control."""
    glyphs = mix_glyphs = None
    if cfg.input.kind == "vision":
        bank = lambda render: control_bank(glyph_bank(vocab.tokens, SPECIALS, render, progress=progress), cfg.input,
                                           len(SPECIALS))
        glyphs = bank(cfg.input.render)
        if mix and cfg.input.mix_fonts:
            mix_glyphs = torch.stack([bank(render) for render in mix_renders(cfg.input)])
    return HotStartLM(cfg, glyphs, mix_glyphs)


def mix_renders(cfg: InputConfig) -> list[RenderConfig]:
    """The render settings of each --mix-font: the primary's, in that font and face."""
    from dataclasses import replace

    from ..render.fonts import parse_font_spec

    renders = []
    for spec in cfg.mix_fonts:
        path, face = parse_font_spec(spec)
        renders.append(replace(cfg.render, font=path, face=face))
    return renders


def write_run_files(run_dir: Path, cfg: RunConfig, vocab: Vocab) -> None:
    """config.yaml, vocab.json and (vision) render.json: everything needed to rebuild the run."""
    save_yaml(to_dict(cfg), run_dir / "config.yaml")
    vocab.save(run_dir / "vocab.json")
    if cfg.model.input.kind == "vision":
        from ..render.glyph import GlyphRenderer

        font = GlyphRenderer(cfg.model.input.render).font
        mixed = [GlyphRenderer(render).font for render in mix_renders(cfg.model.input)]
        write_json(run_dir / "render.json", {**to_dict(cfg.model.input.render), "font_name": font.name,
                                             "font_path": font.path, "font_face": font.face, "font_sha256": font.sha256,
                                             **({"mix_fonts": [{"font_name": f.name, "font_path": f.path, "font_face": f.face,
                                                                "font_sha256": f.sha256} for f in mixed]} if mixed else {})})


@dataclass
class LoadedRun:
    """A run rebuilt from its folder."""

    config: RunConfig
    corpus: PreparedCorpus
    model: HotStartLM
    render_settings: dict[str, Any] | None


def load_run(run_dir: str | Path, checkpoint: str = "best", render_overrides: dict[str, Any] | None = None,
             progress: bool = True) -> LoadedRun:
    """Rebuild a run's model from its folder (config, vocabulary, render settings, weights).

    `checkpoint` is best, last, or init: the weights the run started from, rebuilt from its
    config and seed instead of loaded (a baseline for any statistic of a trained model).

    `render_overrides` re-renders a vision model's glyphs with other settings (res, crop, margin,
    font, face): the trained weights stay, only the pictures change.
    """
    from .run_folder import open_run

    folder = open_run(run_dir)
    folder.require(("next-char",), "; this command reads next-char runs (HotStart's index and vision LMs)")
    run_dir, saved = folder.path, folder.saved
    cfg = from_dict(RunConfig, saved)
    corpus = PreparedCorpus.load(cfg.data)
    if (run_dir / "vocab.json").is_file():
        vocab = Vocab.load(run_dir / "vocab.json")
    else:
        # Committed result folders leave the per-run copy out (it is the corpus's, and large), so
        # the corpus's vocabulary stands in when its size is the one the weights were built for.
        vocab = corpus.vocab
        if len(vocab) != cfg.model.vocab_size:
            raise HotStartError(f"{run_dir} has no vocab.json, and the corpus at {cfg.data} has {len(vocab)} tokens, not the "
                                f"run's {cfg.model.vocab_size}; pass the corpus the run was trained on")
    if corpus.vocab.tokens != vocab.tokens:
        raise HotStartError(f"the corpus at {cfg.data} has another vocabulary than run {run_dir}; re-prepare it or pass the right run")
    render_settings = None
    if cfg.model.input.kind == "vision":
        if render_overrides:
            # the encoder's layers follow the resolution trained at, not the one evaluated at
            cfg.model.input.encoder.patch = cfg.model.input.encoder.patch or patch_stride(cfg.model.input.render.res)
            cfg.model.input.render = from_dict(RenderConfig, {**to_dict(cfg.model.input.render), **render_overrides})
        _check_font(run_dir, cfg.model.input.render, overridden=bool({"font", "face"} & set(render_overrides or {})))
        render_settings = to_dict(cfg.model.input.render)
    if checkpoint not in ("best", "last", "init"):
        raise HotStartError(f"unknown checkpoint '{checkpoint}'; choose best, last or init")
    if checkpoint == "init":
        torch.manual_seed(cfg.train.seed)  # as training does right before building its model
    # the mixed-in fonts only matter to training (and to the weights it started from)
    model = build_model(cfg.model, vocab, progress, mix=checkpoint == "init")
    if checkpoint != "init":
        if not (run_dir / "checkpoints").is_dir():
            raise HotStartError(f"{run_dir} has no checkpoints folder (result folders are kept without their weights); "
                                "retrain the run, or pass --checkpoint init for the weights it started from")
        load_weights(model, run_dir / "checkpoints" / f"{checkpoint}.safetensors")
    model.eval()
    return LoadedRun(cfg, corpus, model, render_settings)


def _check_font(run_dir: Path, render: RenderConfig, overridden: bool) -> None:
    """Warn when the font file differs from the one the run was trained with."""
    from ..render.glyph import GlyphRenderer

    saved = read_json(run_dir / "render.json", "render settings")
    font = GlyphRenderer(render).font
    if font.sha256 != saved.get("font_sha256") and not overridden:
        print(f"warning: font {font.path} differs from the one run {run_dir} was trained with "
              f"({saved.get('font_name')}, sha256 {str(saved.get('font_sha256'))[:12]}...)", file=sys.stderr)
