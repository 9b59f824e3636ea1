"""A prepared corpus's sequences as rendered lines, and what every objective over them shares: the input of
every model that reads lines of pixels (PIXEL-M4's MAE, PixelGPT, PIXAR, DualGPT's pixel path).

One line per corpus sequence (our reading; PIXEL packs sentences until a line is full): its special
tokens (<sep> between documents, <unk>) drawn as spaces, so a line shows exactly the sequence's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..config import save_yaml, to_dict
from ..data.prepared import SPECIALS, PreparedCorpus
from ..errors import HotStartError
from ..render.line import LineBatch, LineRenderConfig, LineRenderer, has_visible
from .checkpoint import write_json
from .objective import Objective, validation_sample


class CorpusLines:
    """The text and the rendering of corpus sequences, by sequence index."""

    def __init__(self, corpus: PreparedCorpus, cfg: LineRenderConfig) -> None:
        self.corpus = corpus
        self.renderer = LineRenderer(cfg)
        self._text = np.array([" " if token in SPECIALS else token for token in corpus.vocab.tokens], dtype=object)

    def texts(self, index: np.ndarray) -> list[str]:
        """The text of sequences `index`, one line each."""
        lines = []
        for row in self.corpus.sequences(index).numpy():
            text = "".join(self._text[row])
            lines.append(text if has_visible(text) else self.corpus.vocab.decode(row))  # only specials: draw their names
        return lines

    def render(self, index: np.ndarray) -> LineBatch:
        """Sequences `index` drawn as lines, padded to max_patches."""
        return self.renderer.render_batch(self.texts(index))

    def render_all(self, index: np.ndarray, chunk: int = 64) -> list[LineBatch]:
        """Sequences `index` drawn `chunk` at a time (the validation lines, once per run)."""
        return [self.render(index[s : s + chunk]) for s in range(0, len(index), chunk)]


def language_means(losses: np.ndarray, languages: np.ndarray) -> dict[str, float]:
    """{'val_loss_LANG': mean} per language of a corpus of several, else {}: per-line validation losses
    broken down as the mae and next-patch runs log them."""
    names = np.unique(languages)
    if len(names) < 2:
        return {}
    return {f"val_loss_{name}": float(losses[languages == name].mean()) for name in names}


class LineObjective(Objective):
    """What the objectives over rendered lines share (mae, next-patch, pixar, dual): the renderer, the fixed
    validation lines drawn once at `check` (how many were cut at max_patches), the run files that rebuild the
    renderer, the model built from the saved config alone, and the validation lines in evaluation batches."""

    def line_settings(self) -> LineRenderConfig:
        """How this run draws its lines (the model config's `line`)."""
        return self.config.model.line

    def compiled_part(self, model: nn.Module) -> nn.Module:
        """The part `--compile` compiles in place (parameter names, and so checkpoints, stay the same)."""
        return model.decoder

    def settle_model(self) -> None:
        """Fill what the corpus decides and refuse what the model cannot train with."""
        self.config.model.validate()

    def freeze_refusal(self) -> str:
        """Why --freeze-decoder does not apply: these decoders train from scratch."""
        return f"a {self.name} run trains its decoder from scratch"

    def check(self) -> None:
        """Settings the model cannot train with; the renderer and the validation lines, drawn once."""
        self.settle_model()
        if self.config.train.freeze_decoder:
            raise HotStartError(f"--freeze-decoder freezes a next-char run's pretrained decoder; {self.freeze_refusal()}")
        self.lines = CorpusLines(self.corpus, self.line_settings())
        self._val = validation_sample(self.corpus, self.config.train.eval_sequences)
        rendered = self.lines.render_all(self._val)
        self.val_line_patches = np.concatenate([r.lengths for r in rendered]) if rendered else np.zeros(0, dtype=np.int64)
        self.truncated_lines = int(sum((r.truncated > 0).sum() for r in rendered))

    def build_model(self, progress: bool) -> nn.Module:
        """The model for the saved config (the seed is the loop's); compiled if asked."""
        model = self.saved_model(self.config)
        if self.config.train.compile:
            self.compiled_part(model).compile()
        return model

    def write_run_files(self, run_dir: Path) -> None:
        """config.yaml, vocab.json (the lines' characters) and render.json (the line renderer with its fonts)."""
        save_yaml(to_dict(self.config), run_dir / "config.yaml")
        self.corpus.vocab.save(run_dir / "vocab.json")
        write_json(run_dir / "render.json", self.lines.renderer.settings())

    def validation_batches(self) -> Iterator[tuple[int, np.ndarray]]:
        """(start, sequence index) of the validation lines, a training batch's worth at a time."""
        size = self.config.train.batch_size
        for start in range(0, len(self._val), size):
            yield start, self._val[start : start + size]

    def line_loss_metrics(self, losses: list[float]) -> tuple[float, dict[str, float]]:
        """The mean of per-line validation losses (NaN for none), and its means per language (val_loss_LANG)."""
        losses_arr = np.array(losses)
        mean = float(losses_arr.mean()) if len(losses) else float("nan")
        return mean, language_means(losses_arr, self.corpus.sequence_languages[self._val])

    def line_summary(self) -> dict[str, Any]:
        """The summary fields every line run shares: its validation lines and how many were cut."""
        return {"val_lines": len(self._val), "val_lines_truncated": self.truncated_lines}
