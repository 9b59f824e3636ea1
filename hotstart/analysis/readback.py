"""Reading pixels back as characters: what a pixel language model wrote, as text.

Where every patch of a line is one character cell (`cell: char`), a patch reads back as the character
whose glyph, drawn by the same renderer, is nearest to it (squared pixel distance) among the
vocabulary's characters, a blank cell (a space, and the specials <sep> and <unk>, which lines draw as
spaces) and the end-of-sequence patch. That puts a pixel model's next-character accuracy on the scale
HotStart's index and vision LMs are measured on (training/evaluate.py).

Our reading where the issue and the papers leave room:
- characters that draw the same pixels (none after NFKC in practice, but a font may lack several)
  are one glyph, read as the most frequent of them;
- readability is the share of generated cells read back as a character (not blank, not the end
  patch) whose ink, thresholded at 1/2, overlaps the read glyph's ink by an intersection over union
  of at least READABLE_IOU: a smudge is read as its nearest glyph too, but does not count as readable;
- a character's script is the first word of its Unicode name (CJK, LATIN, DIGIT, ...), and a
  generation's agreement with its prompt's language is the share of its readable characters whose
  script is the prompt's most common one (smudges read as some glyph say nothing of a language).

Running text (`cell: free` or `bigram`) has no cell per character; an OCR engine reads it back
(OcrReader): rapidocr-onnxruntime's PP-OCRv4 recogniser, whose ONNX models ship inside its wheel and run
offline (`pip install 'hotstart[ocr]'`). Our reading there:
- the line is scaled to the recogniser's 48 px height and read as one line (no text detection);
- a generation ends before its first patch with at least END_INK mean ink (the end patch is full ink,
  and no text is that dark);
- a read character counts when it is a letter or digit of the run's vocabulary (after NFKC, as the
  corpus) and the recogniser gave it a probability of at least OCR_CONFIDENT: the recogniser decodes a
  grey smudge as some character too (a PixelGPT line of blurred average glyphs reads as a row of 健,
  建 and 爆), but with a probability near 0.2, where real text reads near 1;
- readability is the number of such characters over the number the generated width holds at one
  character per em (a Han character's advance; two per patch with bigram cells), capped at 1. A line of
  real text scores close to, not exactly, 1 (its punctuation does not count, a character cut at the
  prompt's edge is lost), so compare with the same measure on real continuations. Latin letters are
  narrower than an em, so Latin-heavy lines reach the cap sooner.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ..data.prepared import SPECIALS, Vocab
from ..errors import HotStartError
from ..render.line import LineRenderConfig, LineRenderer, has_visible, line_image

BLANK, END = -1, -2
"""What a cell reads as besides a vocabulary ID: a blank cell, the end-of-sequence patch."""
READABLE_IOU = 0.5
"""A read character is readable when its ink overlaps its glyph's by at least this IoU."""
END_INK = 0.75
"""Running text: a patch with at least this mean ink is the end patch (full ink; text is far lighter)."""
OCR_HEIGHT = 48
"""The line height PP-OCRv4's recogniser reads; lines are scaled to it."""
OCR_CONFIDENT = 0.5
"""A character the recogniser reads with at least this probability counts as read."""


class GlyphReader:
    """The glyph bank of a `char`-cell line renderer over a vocabulary, and nearest-glyph reading."""

    def __init__(self, cfg: LineRenderConfig, vocab: Vocab) -> None:
        if cfg.cell != "char":
            raise HotStartError(f"reading patches back as characters needs one character per patch (cell char); these "
                                f"lines use cell {cfg.cell}")
        self.vocab = vocab
        chars = list(vocab.chars)
        if not chars:
            raise HotStartError("the vocabulary has no characters to read patches back as; pass a prepared corpus's")
        renderer = LineRenderer(dataclasses.replace(cfg, max_patches=2, missing="blank"))  # a character and the end patch
        visible = [i for i, ch in enumerate(chars) if has_visible(ch)]  # a space draws nothing: it reads as BLANK
        drawn = np.concatenate([renderer.render_batch([chars[i] for i in visible[s : s + 1024]]).patches[:, 0]
                                for s in range(0, len(visible), 1024)])  # (V', P, P[, C]): each character alone
        self.patch_shape = tuple(drawn.shape[1:])
        width = int(np.prod(self.patch_shape))
        # one bank entry per distinct drawing; the vocabulary is ordered by frequency, so the most
        # frequent of characters that draw alike is the one read
        self._drawn = torch.full((len(vocab),), BLANK, dtype=torch.long)  # vocabulary ID -> what it reads as
        first: dict[bytes, int] = {}
        for i, patch in zip(visible, drawn.reshape(len(visible), width)):
            if patch.any():
                self._drawn[i + len(SPECIALS)] = first.setdefault(patch.tobytes(), i + len(SPECIALS))
        keep = sorted(first.values())
        rows = {i + len(SPECIALS): r for r, i in enumerate(visible)}
        glyphs = torch.from_numpy(drawn.reshape(len(visible), width)[[rows[i] for i in keep]])
        self.bank = torch.cat([glyphs, torch.zeros(1, width), torch.ones(1, width)])  # (K + 2, P*P*C)
        self.ids = torch.tensor(keep + [BLANK, END], dtype=torch.long)
        self._row = {i: k for k, i in enumerate(self.ids.tolist())}

    def read(self, patches: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(..., P, P[, C]) patches -> (...) the vocabulary ID, BLANK or END each reads back as."""
        lead = patches.shape[: patches.dim() - len(self.patch_shape)]
        flat = patches.reshape(-1, self.bank.shape[1]).float()
        nearest = [torch.cdist(flat[s : s + chunk], self.bank).argmin(1) for s in range(0, len(flat), chunk)]
        return self.ids[torch.cat(nearest)].reshape(lead) if nearest else torch.zeros(lead, dtype=torch.long)

    def drawn_as(self, ids: torch.Tensor) -> torch.Tensor:
        """Vocabulary IDs -> what their cells read back as when drawn perfectly: BLANK for the specials
        and characters no font draws; a character drawn like a more frequent one reads as that one."""
        return self._drawn[ids]

    def readable(self, patches: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(..., P, P[, C]) patches and the (...) IDs they read as -> (...) bool: a character, with ink
        overlapping its glyph's by IoU >= READABLE_IOU."""
        flat = patches.reshape(-1, self.bank.shape[1]).float() >= 0.5
        glyphs = self.bank[[self._row[i] for i in ids.reshape(-1).tolist()]] >= 0.5
        union = (flat | glyphs).sum(1).clamp(min=1)
        iou = (flat & glyphs).sum(1) / union
        return ((iou >= READABLE_IOU) & (ids.reshape(-1) >= 0)).reshape(ids.shape)

    def read_line(self, new: torch.Tensor, prompt: str, prompt_patches: int) -> dict:
        """What the generated patches `new` (after a prompt) read back as: text, readability (the share
        of generated cells, up to the end patch, read as a readable character) and agreement with the
        prompt's script (of the readable characters). `prompt_patches` is unused: every cell is one character."""
        ids = self.read(new)
        ends = (ids == END).nonzero()
        if len(ends):  # a line ends at its end patch: what follows is not part of the generation
            new, ids = new[: int(ends[0]) + 1], ids[: int(ends[0]) + 1]
        text = self.text(ids.tolist())
        readable = self.readable(new, ids)
        return {"read": text, "readability": float(readable.float().mean()) if len(new) else math.nan,
                "language_agreement": language_agreement(prompt, self.text(ids[readable].tolist()))}

    def text(self, ids: Sequence[int]) -> str:
        """Read IDs as text: characters, a space for BLANK, nothing after END."""
        out = []
        for i in ids:
            if i == END:
                break
            out.append(" " if i == BLANK or self.vocab.is_special(i) else self.vocab.tokens[i])
        return "".join(out)


def script(ch: str) -> str:
    """The first word of a character's Unicode name (CJK, LATIN, DIGIT, ...); '?' for unnamed ones."""
    return unicodedata.name(ch, "?").split()[0]


def language_agreement(prompt: str, read: str) -> float:
    """Share of the read characters (spaces aside) in the prompt's most common script; NaN for none."""
    scripts = [script(c) for c in prompt if not c.isspace()]
    chars = [c for c in read if not c.isspace()]
    if not scripts or not chars:
        return float("nan")
    main = Counter(scripts).most_common(1)[0][0]
    return sum(script(c) == main for c in chars) / len(chars)


class OcrReader:
    """Running text read back by an OCR engine (PP-OCRv4's recogniser, through rapidocr-onnxruntime)."""

    def __init__(self, cfg: LineRenderConfig, vocab: Vocab) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise HotStartError("reading running text back needs an OCR engine; pip install 'hotstart[ocr]' "
                                "(rapidocr-onnxruntime, whose models ship in its wheel)") from None
        self.cfg = cfg
        self.known = {ch for ch in vocab.chars if unicodedata.category(ch)[0] in "LN"}
        """The characters that count as read: the vocabulary's letters and digits."""
        self.engine = RapidOCR()

    def ocr(self, patches: torch.Tensor) -> tuple[str, list[float]]:
        """(n, P, P[, C]) patches -> the text the recogniser reads in them and each character's probability."""
        if not len(patches):
            return "", []
        return ocr_line(self.engine, line_image(patches.float().clamp(0, 1).numpy()))

    def read_line(self, new: torch.Tensor, prompt: str, prompt_patches: int) -> dict:
        """What the generated patches `new` read back as: text, the recogniser's confidence, readability
        (module docstring) and agreement with the prompt's script. `prompt_patches` is unused."""
        if not len(new):
            return {"read": "", "readability": math.nan, "language_agreement": math.nan, "ocr_confidence": math.nan}
        ink = new.float().reshape(len(new), -1).mean(1)
        ends = (ink >= END_INK).nonzero()
        text_patches = new[: int(ends[0])] if len(ends) else new
        raw, confidences = self.ocr(text_patches)
        read = [(unicodedata.normalize("NFKC", ch), p) for ch, p in zip(raw, confidences)]  # as the corpus is
        per_patch = 2.0 if self.cfg.cell == "bigram" else self.cfg.patch / self.cfg.em_px  # one per em
        expected = max(1, round(len(text_patches) * per_patch))
        counted = [c for chars, p in read if p >= OCR_CONFIDENT for c in chars if c in self.known]
        return {"read": "".join(chars for chars, _ in read), "readability": min(1.0, len(counted) / expected),
                "language_agreement": language_agreement(prompt, "".join(counted)),
                "ocr_confidence": sum(confidences) / len(confidences) if confidences else math.nan}


def ocr_line(engine, line: Image.Image) -> tuple[str, list[float]]:
    """One image of one line of text, dark on light -> what `engine` (a RapidOCR) reads and each character's
    probability. The line is scaled to the recogniser's height and given a white border, as on a scanned page."""
    line = line.convert("L")
    line = line.resize((max(1, round(line.width * OCR_HEIGHT / line.height)), OCR_HEIGHT), Image.BICUBIC)
    pad = OCR_HEIGHT // 3
    page = Image.new("L", (line.width + 2 * pad, line.height + 2 * pad), 255)
    page.paste(line, (pad, pad))
    # the recogniser alone (the line is known: no detection), with each character's probability
    (text, _, details), *_ = engine.text_rec(np.asarray(page.convert("RGB")), return_word_box=True)[0]
    confidences = [float(c) for c in details[4]] if text else []
    if len(confidences) != len(text):
        raise HotStartError(f"the OCR engine gave {len(confidences)} probabilities for {len(text)} characters; "
                            "install the version the ocr extra names (pip install 'hotstart[ocr]')")
    return text, confidences


def line_reader(cfg: LineRenderConfig, vocab: Vocab) -> GlyphReader | OcrReader:
    """The reader for lines drawn by `cfg`: glyphs where every patch is a character cell, OCR otherwise."""
    return GlyphReader(cfg, vocab) if cfg.cell == "char" else OcrReader(cfg, vocab)
