"""A prepared corpus's sequences as rendered lines: the input of every model that reads lines of pixels
(PIXEL-M4's MAE, PixelGPT, PIXAR).

One line per corpus sequence (our reading; PIXEL packs sentences until a line is full): its special
tokens (<sep> between documents, <unk>) drawn as spaces, so a line shows exactly the sequence's text.
"""

from __future__ import annotations

import numpy as np

from ..data.prepared import SPECIALS, PreparedCorpus
from ..render.line import LineBatch, LineRenderConfig, LineRenderer, has_visible


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
