"""Text lines as pixels: a line drawn black on white, `patch` pixels high, cut into patch x patch
patches. PIXEL-M4 reads 16x16 grey patches, PixelGPT RGB ones, PIXAR 8x8 binary ones (the papers in
shared/papers); HotStart's own glyph (glyph.py) is one character alone.

How characters are laid into patches (`cell`):
    free    running text, patches cut wherever they fall (PIXEL-M4, PixelGPT and PIXAR render so)
    char    one character per patch, centred: HotStart's per-character glyph placed in a line
    bigram  two characters per patch, each centred in its half; East Asian wide characters (Han, kana,
            Hangul) are drawn at half size, others at the line's size, so a wide Latin letter (W, m)
            overhangs its half. Our reading of PIXEL-M4's bigram rendering.
    words   each word (a run of characters between spaces) drawn alone as running text and started at a patch
            boundary, so no patch holds parts of two words; the spaces take no patch of their own (the boundary
            separates the words), and the words follow the line's base direction. Our reading of the "words"
            strategy of Lotz et al. (2023), which PIXEL-M4 builds on. Text without spaces (Chinese) is one word:
            there it draws as free does (a word segmenter is not part of this toolkit).

Arrays hold ink coverage as glyph.py does (0 background, 1 full ink); images show it black on white.
Every line ends with an end-of-sequence patch of full ink, which no text draws (our choice of marker).

Speed: drawing a whole line with FreeType costs ~25 ms, so simple text takes a fast path: every
character is drawn once into a cache of ink columns, and a batch of lines is the sum of its cached
glyphs at their pen positions, placed with a few numpy operations. Text that needs
shaping (marks that combine, right-to-left scripts, joiners) is drawn whole by Pillow's raqm layout
(HarfBuzz + FriBiDi), one run per font; `char` and `bigram` cells draw characters alone, unshaped.

Edges (`edge`): every font sits on one baseline, so ink taller than the line (Thai stacked tone marks,
Devanagari marks, a CJK font's Å or g) would be cut. Each character, or each word of a shaped line, is drawn
first on a canvas three lines tall; under "fit" it is then moved by whole rows (drawn smaller first where it
is taller than the line) until its ink is inside, under "clip" it is cut, and what it lost is counted.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features
from PIL import __version__ as PILLOW_VERSION

from ..config import flag
from ..errors import HotStartError
from .fonts import (
    default_font,
    describe_chars,
    load_face,
    parse_font_spec,
    script_fonts,
)

MODES = ("grey", "binary", "rgb")
CELLS = ("free", "char", "bigram", "words")
LINE_MISSING_POLICIES = ("blank", "error")
BINARY_DRAWS = ("aliased", "threshold")
EDGES = ("clip", "fit")
CLIPPED_SHARE = 0.005
"""A character (or shaped run) counts as clipped when more than this share of its ink falls outside the line."""
_ISOLATES = {"LRI", "RLI", "FSI", "PDI"}
_SHAPED_BIDI = {"R", "AL", "AN", "RLE", "RLO", "RLI", "LRE", "LRO", "LRI", "FSI"}
_SHAPED_CATEGORIES = {"Mn", "Mc", "Me", "Cf"}  # combining marks, joiners and other format characters


_REMEMBERED = 100_000
"""Entries each of a renderer's memories of shaped runs (advances, fitted words) holds before it starts again."""
MAX_LINE_PATCHES = 16_384
"""The longest line a renderer draws, in patches: 30 times PIXEL's 529, and a bound on memory (a batch of 32
such grey 16 px lines is 537 MB), so a typo cannot ask for gigabytes."""


@dataclass
class LineRenderConfig:
    """How a line of text becomes patches; saved with every run that reads lines."""

    patch: int = 16
    """Patch side in pixels, also the line's height (PIXEL-M4 and PixelGPT: 16; PIXAR: 8)."""
    mode: str = field(default="grey", metadata=flag("line-mode"))
    """grey (ink coverage), binary (ink > binary_threshold; PIXAR), or rgb (three equal channels; PixelGPT)."""
    cell: str = "free"
    """free (running text), char (one character per patch), bigram (two per patch) or words (each word from a
    patch boundary)."""
    max_patches: int = 529
    """Patches per line, the end-of-sequence patch included (PIXEL-M4: 529); longer text is cut and counted."""
    margin: float = field(default=0.0625, metadata=flag("line-margin"))
    """Fraction of the patch left blank above and below the em box (1 px at 16, 1 px at 8)."""
    font: str | None = None
    """Primary font file; None is Noto Sans CJK SC (Han, Latin, Cyrillic)."""
    face: int | None = None
    """Face index in a font collection; None is the SC face of the default font, 0 for others."""
    fallback_fonts: list[str] = field(default_factory=list, metadata=flag("fallback-font", repeat=True))
    """Fonts tried after the primary, in order, for a character it lacks ("path" or "path#face")."""
    script_fonts: bool = True
    """Then try the installed fonts of other scripts (fonts.script_fonts: Devanagari, DejaVu Sans)."""
    missing: str = "blank"
    """A character no font has: "blank" leaves half an em of background and counts it, "error" stops."""
    binary_threshold: float = 0.5
    """binary_draw threshold: ink coverage above which a binary pixel is ink."""
    binary_draw: str = "threshold"
    """binary: how a line becomes black and white. aliased (what `hotstart train` and `render-text` ask for
    unless told otherwise): FreeType draws the glyphs without anti-aliasing, each pixel inked where the outline
    covers its centre, so thin strokes keep a pixel; threshold: anti-aliased grey cut at binary_threshold, which
    at 8 px loses most of a Han character's strokes (each is under half a pixel wide). The default here is
    threshold so that a run saved before this option existed (its config has no binary_draw) is rebuilt as it
    trained; the grids keep it too until they are re-planned."""
    edge: str = "clip"
    """What happens to ink that would leave the line at its top or bottom. fit (what `hotstart train` and
    `render-text` ask for unless told otherwise): a character (a shaped run: the run) whose ink would leave the
    line is moved up or down by whole pixel rows until it is inside, and drawn smaller first where it is taller
    than the line (Thai stacked tone marks, Devanagari, a Latin g or an Å of the CJK font); everything else stays
    on the shared baseline, pixel for pixel. clip: every font on one baseline and ink past the edge cut (counted
    in LineBatch.clipped); the default here so that a run saved before this option is rebuilt as it trained."""

    @property
    def margin_px(self) -> int:
        """Blank rows above and below the em box."""
        return math.floor(self.margin * self.patch + 0.5)

    @property
    def em_px(self) -> int:
        """The font size in pixels (units per em; for Noto Sans CJK also the height of its em box)."""
        return self.patch - 2 * self.margin_px

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field, its value and what is allowed."""
        checks = [
            ("patch", isinstance(self.patch, int) and 4 <= self.patch <= 64, "an integer from 4 to 64"),
            ("mode", self.mode in MODES, " | ".join(MODES)),
            ("cell", self.cell in CELLS, " | ".join(CELLS)),
            ("max_patches", isinstance(self.max_patches, int) and 2 <= self.max_patches <= MAX_LINE_PATCHES,
             f"an integer from 2 (text + end) to {MAX_LINE_PATCHES:,}"),
            ("margin", isinstance(self.margin, (int, float)) and 0 <= self.margin < 0.5, "0 <= margin < 0.5"),
            ("missing", self.missing in LINE_MISSING_POLICIES, " | ".join(LINE_MISSING_POLICIES)),
            ("binary_threshold", isinstance(self.binary_threshold, (int, float)) and 0 < self.binary_threshold < 1,
             "a number between 0 and 1"),
            ("binary_draw", self.binary_draw in BINARY_DRAWS, " | ".join(BINARY_DRAWS)),
            ("edge", self.edge in EDGES, " | ".join(EDGES)),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise HotStartError(f"line render option {name}={getattr(self, name)!r} is not allowed; use {allowed}")
        if self.em_px < 2:
            raise HotStartError(f"margin {self.margin} leaves no room for text in a {self.patch} px line; use a smaller margin")


@dataclass
class LineBatch:
    """Rendered lines, padded to max_patches."""

    patches: np.ndarray
    """(B, max_patches, P, P) float32 ink, or (B, max_patches, P, P, 3) for rgb; zeros after each line's end."""
    lengths: np.ndarray
    """(B,) patches of each line, its end-of-sequence patch included."""
    truncated: np.ndarray
    """(B,) characters of each line cut because the line reached max_patches."""
    missing: dict[str, int]
    """Characters no font has -> how often they occurred (drawn blank)."""
    fonts_used: dict[str, int]
    """Font name -> characters it drew."""
    clipped: dict[str, int] = field(default_factory=dict)
    """Characters (for a shaped line, runs of one font and direction) that lost more than CLIPPED_SHARE of their
    ink at the line's top or bottom edge -> how often. Under edge="fit" only what no shift or shrink could fit."""

    @property
    def attention_mask(self) -> np.ndarray:
        """(B, max_patches) 1 where a patch belongs to the line."""
        return (np.arange(self.patches.shape[1])[None, :] < self.lengths[:, None]).astype(np.int64)


class LineRenderer:
    """Renders lines of text with one LineRenderConfig (validated in __init__). Not thread-safe."""

    def __init__(self, cfg: LineRenderConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        path, face = (cfg.font, 0) if cfg.font is not None else default_font()
        specs = [(path, face if cfg.face is None else cfg.face)] + [parse_font_spec(s) for s in cfg.fallback_fonts]
        if cfg.script_fonts:
            specs += [(p, 0) for p in script_fonts() if (p, 0) not in specs]
        self._specs = specs
        self._faces = [load_face(p, f, cfg.em_px, em_box=False) for p, f in specs]
        self._half_faces = [load_face(p, f, cfg.em_px / 2, em_box=False) for p, f in specs]
        self._baseline = cfg.margin_px + self._faces[0].ascender_px  # one baseline for every font
        self._half_baseline = cfg.margin_px + cfg.em_px / 4 + self._half_faces[0].ascender_px
        self._pad = 2 * cfg.patch  # canvas columns either side of the text, for glyphs that overhang
        self._chars = _CharTable()
        self._glyphs: list[tuple[int, np.ndarray]] = []  # (first ink column from the pen, (w, P) ink columns)
        self._glyph_lost: list[float] = []  # share of each glyph's ink outside the line
        self._packed: tuple[np.ndarray, ...] | None = None
        # Shaped lines (raqm): fonts per (face, scale), advances per (face, direction, run) and fitted words per
        # (face, direction, word). Words recur in running text, and measuring or drawing one through Pillow
        # costs 50-500 us, so remembering them is most of a shaped line's speed. Cleared when they grow large.
        self._shaped_fonts: dict[tuple[int, float], ImageFont.FreeTypeFont] = {}
        self._advances: dict[tuple[int, int, str], float] = {}
        self._fitted_words: dict[tuple[int, int, str], tuple[np.ndarray, float, float]] = {}
        # cell "words": each word is a line of running text of its own, drawn by a free renderer alike
        self._word_lines = LineRenderer(dataclasses.replace(cfg, cell="free")) if cfg.cell == "words" else None

    @property
    def fonts(self) -> list[str]:
        """Names of the font chain, primary first."""
        return [f.info.name for f in self._faces]

    def settings(self) -> dict:
        """Everything that determines the pixels, for a run folder: geometry and each font's identity."""
        return {**dataclasses.asdict(self.cfg), "fonts": [dataclasses.asdict(f.info) for f in self._faces],
                "shaping": f"raqm {features.version('raqm')}" if features.check("raqm") else "none",
                "freetype": features.version("freetype2"), "pillow": PILLOW_VERSION}

    # ------------------------------------------------------------------------ public API

    def render(self, text: str) -> np.ndarray:
        """(n, P, P) float32 patches of one line (rgb: (n, P, P, 3)), its end-of-sequence patch included."""
        batch = self._render([text], pad=False)
        return batch.patches[0, : batch.lengths[0]]

    def render_batch(self, lines: Sequence[str]) -> LineBatch:
        """Render lines into one padded batch, counting what was cut and what no font could draw."""
        return self._render(lines, pad=True)

    def _render(self, lines: Sequence[str], pad: bool) -> LineBatch:
        """render_batch, its patches padded to max_patches (`pad`) or only as many as its longest line needs: the
        columns past every line's end are never drawn, which is most of a short line's cost."""
        cfg, p = self.cfg, self.cfg.patch
        _check_lines(lines)
        if self._word_lines is not None:
            return self._render_words(lines, pad)
        chars = self._characters(lines)
        shaped = {b: self._draw_shaped(lines[b]) for b in np.flatnonzero(chars.shaped_line).tolist()}
        for b, (_, n_patches, truncated, _) in shaped.items():
            chars.n_patches[b], chars.truncated[b] = n_patches, truncated
        needed = int(chars.n_patches.max(initial=0)) + 1  # the longest line and its end patch
        ink = self._scatter(chars, needed * p + 2 * self._pad)  # (B, stride, P): column by column
        ink = ink[:, self._pad : self._pad + needed * p]  # (B, needed * P, P)
        drawn_codes = [chars.kept_codes]
        lost = self._pack()[4][chars.glyph] if len(chars.glyph) else np.zeros(0)
        clipped_codes, clipped_runs = chars.kept_codes[lost > CLIPPED_SHARE], []
        for b, (drawn, _, _, cut) in shaped.items():
            clipped_runs += cut
            ink[b, : drawn.shape[1]] = drawn.T
            drawn_codes.append(_codes(lines[b][: len(lines[b]) - chars.truncated[b]]))
        for b, n in enumerate(chars.n_patches):
            ink[b, n * p :] = 0.0  # overhang past the text's last patch, where the end patch goes
            ink[b, n * p : (n + 1) * p] = 1.0  # end-of-sequence patch
        np.clip(ink, 0.0, 1.0, out=ink)  # neighbours' anti-aliased edges may add up past full ink
        patches = ink.reshape(len(lines), needed, p, p).transpose(0, 1, 3, 2)  # (B, N, P rows, P columns)
        if cfg.mode == "binary":
            patches = patches > cfg.binary_threshold
        if pad:
            padded = np.zeros((len(lines), cfg.max_patches, p, p), dtype=np.float32)
            padded[:, :needed] = patches
            patches = padded
        else:
            patches = patches.astype(np.float32)  # a contiguous copy
        if cfg.mode == "rgb":
            patches = np.repeat(patches[..., None], 3, axis=-1)  # black ink: every channel alike
        missing, fonts_used = self._tally(np.concatenate(drawn_codes))
        clipped: dict[str, int] = {}
        for key in [chr(c) for c in clipped_codes.tolist()] + clipped_runs:
            clipped[key] = clipped.get(key, 0) + 1
        return LineBatch(patches, chars.n_patches + 1, chars.truncated, missing, fonts_used, clipped)

    def _render_words(self, lines: Sequence[str], pad: bool) -> LineBatch:
        """cell "words": every word of the batch drawn as a free line of its own, then each line's words laid
        from patch boundaries in its base direction, as many whole words as the line holds."""
        cfg = self.cfg
        spans = [[m.group() for m in re.finditer(r"\S+", text)] for text in lines]
        words = self._word_lines._render([word for line in spans for word in line], pad=False)
        rows, lengths, truncated, kept, i = [], [], [], [], 0
        for text, line in zip(lines, spans):
            blocks, used, dropped = [], 0, 0
            for k, word in enumerate(line):
                n = int(words.lengths[i + k]) - 1  # its text patches: a word never needs more than the line holds
                if used + n > cfg.max_patches - 1:
                    dropped = sum(len(w) for w in line[k:])
                    break
                blocks.append(words.patches[i + k, :n])
                kept.append(word)
                used += n
            cut = dropped + int(words.truncated[i + len(blocks) - 1])
            i += len(line)
            if bidi_levels(text)[1] % 2:  # a right-to-left line: its first word on the right
                blocks = blocks[::-1]
            end = np.ones((1, *words.patches.shape[2:]), dtype=np.float32)  # the end-of-sequence patch
            rows.append(np.concatenate([*blocks, end]))
            lengths.append(used + 1)
            truncated.append(cut)
        tally = words if len(kept) == len(words.lengths) else self._word_lines._render(kept, pad=False)
        width = cfg.max_patches if pad else max(lengths)
        patches = np.zeros((len(lines), width, *words.patches.shape[2:]), dtype=np.float32)
        for b, row in enumerate(rows):
            patches[b, : len(row)] = row
        return LineBatch(patches, np.array(lengths, dtype=np.int64), np.array(truncated, dtype=np.int64),
                         tally.missing, tally.fonts_used, tally.clipped)

    # ------------------------------------------------------------------------ layout

    def _characters(self, lines: Sequence[str]) -> _Layout:
        """Where every character of the batch goes, as flat arrays over all characters of all lines."""
        cfg, p, table = self.cfg, self.cfg.patch, self._chars
        lengths = np.array([len(t) for t in lines], dtype=np.int64)
        codes = _codes("".join(lines))  # (C,)
        uniq, inverse = np.unique(codes, return_inverse=True)
        slot = np.array([self._slot(chr(c)) for c in uniq], dtype=np.int64)[inverse]  # (C,)
        self._refuse_missing(uniq)
        line = np.repeat(np.arange(len(lines)), lengths)  # (C,) line of each character
        first = np.cumsum(lengths) - lengths  # (B,) index of each line's first character
        pos = np.arange(len(codes)) - first[line]  # (C,) position in its line
        shaped_line = np.zeros(len(lines), dtype=bool)
        if cfg.cell == "free":
            shaped_line = np.logical_or.reduceat(table.array("shaped")[slot], first)
        half = (table.array("wide")[slot]) if cfg.cell == "bigram" else np.zeros(len(codes), dtype=bool)
        advance = np.where(half, table.array("advance_half")[slot], table.array("advance")[slot])  # (C,) px
        if cfg.cell == "free":
            end = np.cumsum(advance)
            end -= np.concatenate([[0.0], end])[first][line]  # running sum within each line
            x, kept = end - advance, end <= (cfg.max_patches - 1) * p + 1e-6
        else:
            cell_px = p if cfg.cell == "char" else p / 2
            x = pos * cell_px + (cell_px - advance) / 2
            end = (pos + 1) * cell_px
            kept = pos < (cfg.max_patches - 1) * (1 if cfg.cell == "char" else 2)
        kept &= ~shaped_line[line]  # a kept prefix of every line: pen positions only grow
        n_kept = np.bincount(line, weights=kept, minlength=len(lines)).astype(np.int64)
        width = np.where(n_kept > 0, end[np.maximum(first + n_kept - 1, 0)], 0.0)
        # FreeType's hinted advances are whole pixels and Pillow draws at whole pixels, so a pen rounded
        # to the pixel reproduces Pillow's own drawing of the line exactly (tests/test_line_render.py)
        pen = np.floor(x[kept] + 0.5).astype(np.int64)
        glyph = self._glyph_ids(slot[kept], half[kept])
        return _Layout(glyph, pen, line[kept], np.ceil(width / p - 1e-9).astype(np.int64),
                       lengths - n_kept, shaped_line, codes[kept])

    def _slot(self, ch: str) -> int:
        """The character's row in the table, filled in on first sight."""
        table = self._chars
        slot = table.slot.get(ch)
        if slot is not None:
            return slot
        face = next((i for i, f in enumerate(self._faces) if ord(ch) in f.cmap), 0 if ch.isspace() else -1)
        blank = face < 0 or ch.isspace() or unicodedata.category(ch) == "Cc"
        no_font = self.cfg.em_px / 2  # the advance of a character no font has: half an em of background
        return table.add(ch, face=face, blank=blank, shaped=_needs_shaping(ch),
                         wide=unicodedata.east_asian_width(ch) in ("W", "F"),
                         advance=no_font if face < 0 else self._faces[face].pil.getlength(ch),
                         advance_half=no_font / 2 if face < 0 else self._half_faces[face].pil.getlength(ch))

    def _refuse_missing(self, uniq: np.ndarray) -> None:
        """Under --missing error, stop before drawing when any character of the batch is in no font."""
        if self.cfg.missing != "error":
            return
        missing = [chr(c) for c in uniq.tolist() if self._chars.face[self._chars.slot[chr(c)]] < 0 and not chr(c).isspace()]
        if missing:
            raise HotStartError(f"{len(missing)} character(s) are in no font of the chain ({', '.join(self.fonts)}): "
                                f"{describe_chars(missing)}; use --missing blank to draw them blank, "
                                "or --fallback-font PATH")

    def _tally(self, codes: np.ndarray) -> tuple[dict[str, int], dict[str, int]]:
        """Of the characters drawn (those cut by max_patches left out): the ones no font has (-> occurrences,
        drawn blank), and how many each font drew."""
        missing: dict[str, int] = {}
        fonts_used: dict[str, int] = {}
        for code, n in zip(*(a.tolist() for a in np.unique(codes, return_counts=True))):
            ch = chr(code)
            face = self._chars.face[self._chars.slot[ch]]
            if ch.isspace():
                continue
            if face < 0:
                missing[ch] = n
            else:
                name = self._faces[face].info.name
                fonts_used[name] = fonts_used.get(name, 0) + n
        return missing, fonts_used

    def _draw_shaped(self, text: str) -> tuple[np.ndarray, int, int, list[str]]:
        """A line that needs shaping, drawn whole: its bidi levels resolved over the whole line, then cut into
        runs of one font and one level, laid out in visual order and each drawn by raqm in its own direction;
        cut at the longest logical prefix that fits: (ink (P, n * P), text patches n, characters cut, the runs
        that lost ink at the line's edge)."""
        cfg, p = self.cfg, self.cfg.patch
        capacity = (cfg.max_patches - 1) * p
        faces = self._char_faces(text)
        levels, base = bidi_levels(text)
        width = lambda runs: sum(self._run_width(face, level, run) for face, level, run in runs)
        fits = _longest_prefix(lambda k: width(visual_runs(text[:k], faces[:k], levels[:k], base)) <= capacity, len(text))
        canvas = Image.new("L", (capacity + 2 * p, p))
        draw = self._draw(canvas)
        fitted = np.zeros((p, capacity + 2 * p), dtype=np.float32)  # edge "fit": runs composed here instead
        clipped: list[str] = []
        pen = 0.0
        for face, level, run in visual_runs(text[:fits], faces[:fits], levels[:fits], base):
            if face < 0 or self.cfg.edge == "clip":
                if face >= 0:  # drawn on the line's own canvas, as runs saved before the edge option were
                    self._draw_text(draw, (pen, self._baseline), run, self._shaped_font(face), level)
                    if self._lost(face, level, run) > CLIPPED_SHARE:
                        clipped.append(run.strip())
                pen += self._run_width(face, level, run)
                continue
            for word in _words(run, level):  # fitted word by word, so a word looks the same in any line
                width = self._run_width(face, level, word)
                if word.strip():
                    rows, lost, scale = self._fitted_word(face, level, word, width)
                    if lost > CLIPPED_SHARE:
                        clipped.append(word)
                    left = math.floor(pen + width * (1 - scale) / 2)  # a word drawn smaller stays centred in its advance
                    cover = rows[:, : fitted.shape[1] - left] / 255.0
                    fitted[:, left : left + cover.shape[1]] = cover + fitted[:, left : left + cover.shape[1]] * (1 - cover)
                pen += width
        n_patches = math.ceil(pen / p - 1e-9)
        ink = fitted if self.cfg.edge == "fit" else np.asarray(canvas, dtype=np.float32) / 255.0
        return ink[:, : n_patches * p], n_patches, len(text) - fits, clipped

    def _fitted_word(self, face: int, level: int, word: str, width: float) -> tuple[np.ndarray, float, float]:
        """`_inside` of one word drawn alone (edge "fit"), remembered: the same word always draws the same."""
        key = (face, level % 2, word)
        if key not in self._fitted_words:
            if len(self._fitted_words) >= _REMEMBERED:
                self._fitted_words.clear()
            self._fitted_words[key] = self._inside(
                functools.partial(self._draw_run, face, level, word, width=math.ceil(width)))
        return self._fitted_words[key]

    def _draw_text(self, draw: ImageDraw.ImageDraw, at: tuple[float, float], run: str, font: ImageFont.FreeTypeFont,
                   level: int) -> None:
        """One run of one font in its direction, its baseline's left end at `at`."""
        if features.check("raqm"):
            draw.text(at, run, fill=255, font=font, anchor="ls", direction="rtl" if level % 2 else "ltr")
        else:  # no raqm: unshaped, a right-to-left run reversed by hand
            draw.text(at, run[::-1] if level % 2 else run, fill=255, font=font, anchor="ls")

    def _draw_run(self, face: int, level: int, run: str, scale: float, top: int, width: int) -> np.ndarray:
        """(rows, width) uint8 ink of a shaped run alone, `scale` times the line's size, its baseline `top` rows
        further down than the line's."""
        canvas = Image.new("L", (width, 3 * self.cfg.patch))
        font = self._shaped_font(face, scale)
        self._draw_text(self._draw(canvas), (0, self._baseline + top), run, font, level)
        return np.asarray(canvas)

    def _inside(self, draw_at) -> tuple[np.ndarray, float, float]:
        """The line's P rows of ink that `draw_at(scale, top)` draws on a canvas 3P rows tall (its baseline `top`
        rows below the line's), the share of that ink outside those rows, and the scale it was drawn at. Under edge "clip" the rows are the
        middle P as drawn; under "fit" the ink is first drawn smaller where it is taller than P rows, then the
        P rows are chosen nearest the middle that hold all of it (a shift by whole rows)."""
        p = self.cfg.patch
        tall = draw_at(1.0, p)
        rows = np.flatnonzero(tall.any(axis=1))
        if not len(rows):
            return tall[p : 2 * p], 0.0, 1.0
        start, scale = p, 1.0
        if self.cfg.edge == "fit":
            while rows[-1] + 1 - rows[0] > p and scale > 0.25:
                scale *= min(p / (rows[-1] + 1 - rows[0]), 0.97)  # the rows a glyph covers round up: step past them
                tall = draw_at(scale, p)
                rows = np.flatnonzero(tall.any(axis=1))
            start = min(max(start, rows[-1] + 1 - p), rows[0])
        total = float(tall.sum(dtype=np.int64))
        inside = tall[start : start + p]
        return inside, 1.0 - float(inside.sum(dtype=np.int64)) / total, scale

    def _lost(self, face: int, level: int, run: str) -> float:
        """Share of a run's ink past the line's top or bottom, drawn on the shared baseline."""
        canvas = Image.new("L", (math.ceil(self._run_width(face, level, run)) + 2 * self.cfg.patch, 3 * self.cfg.patch))
        self._draw_text(self._draw(canvas), (self.cfg.patch, self._baseline + self.cfg.patch), run,
                        self._shaped_font(face), level)
        tall = np.asarray(canvas)
        total = float(tall.sum(dtype=np.int64))
        return 1.0 - float(tall[self.cfg.patch : 2 * self.cfg.patch].sum(dtype=np.int64)) / total if total else 0.0

    def _run_width(self, face: int, level: int, run: str) -> float:
        """Advance of a run drawn in one face and direction; a character in no font takes half an em. Under edge
        "fit" a run is drawn word by word, so its advance is its words' and spaces' advances added up."""
        if face < 0:
            return self.cfg.em_px / 2 * len(run)
        key = (face, level % 2, run)
        if key not in self._advances:
            if len(self._advances) >= _REMEMBERED:
                self._advances.clear()
            if self.cfg.edge == "fit" and len(words := _words(run, level)) > 1:
                self._advances[key] = sum(self._run_width(face, level, word) for word in words)
            else:
                font = self._shaped_font(face)
                self._advances[key] = (font.getlength(run, direction="rtl" if level % 2 else "ltr")
                                       if features.check("raqm") else font.getlength(run))
        return self._advances[key]

    def _char_faces(self, text: str) -> list[int]:
        """The face that draws each character; spaces and combining marks stay in the face of the character
        before them, so a word and its marks are shaped together."""
        faces: list[int] = []
        for ch in text:
            face = self._chars.face[self._slot(ch)]
            joins = ch.isspace() or unicodedata.category(ch) in _SHAPED_CATEGORIES
            faces.append(faces[-1] if faces and joins and faces[-1] >= 0 else face)
        return faces

    def _shaped_font(self, face_index: int, scale: float = 1.0) -> ImageFont.FreeTypeFont:
        """The face at `scale` times the line's size with raqm layout (BASIC, unshaped, where Pillow lacks raqm)."""
        key = (face_index, scale)
        if key not in self._shaped_fonts:
            self._shaped_fonts[key] = load_face(*self._specs[face_index], self.cfg.em_px * scale,
                                                shaped=features.check("raqm"), em_box=False).pil
        return self._shaped_fonts[key]

    # ------------------------------------------------------------------------ glyph cache

    def _glyph_ids(self, slot: np.ndarray, half: np.ndarray) -> np.ndarray:
        """Glyph id of each (character, size); draws the ones not cached yet."""
        table = self._chars
        key = slot * 2 + half  # (G,)
        for k in np.unique(key[table.array("glyph")[key] < 0]).tolist():
            table.set_glyph(k, len(self._glyphs))
            ch = table.chars[k // 2]
            first, block, lost = self._draw_glyph(ch, bool(k % 2))
            self._glyphs.append((first, block))
            self._glyph_lost.append(lost)
            self._packed = None
        return table.array("glyph")[key]

    def _scatter(self, layout: _Layout, stride: int) -> np.ndarray:
        """(B, stride, P) float32 canvas, column by column, with every glyph of every line added at its pen (each
        line's pen starts `self._pad` columns in, and `stride` leaves room for its last glyph's overhang).

        A glyph is a block of whole ink columns (64 bytes each at P = 16), so placing a line moves about
        12 columns per character rather than 130 scattered pixels."""
        b, p = len(layout.n_patches), self.cfg.patch
        canvas = np.zeros((b * stride, p), dtype=np.float32)  # (B * stride, P)
        if not len(layout.glyph):
            return canvas.reshape(b, stride, p)
        _, widths, first, _, _ = self._pack()
        width = widths[layout.glyph]  # (G,)
        left = layout.line * stride + self._pad + layout.x + first[layout.glyph]  # (G,) first canvas column
        right = left + width
        # Most glyphs share no column with any other: their columns are copied straight in. The few whose
        # anti-aliased edges touch a neighbour's are added afterwards, in layers that never overlap.
        alone = (left >= np.concatenate([[-1], np.maximum.accumulate(right)[:-1]])) & \
                (right <= np.concatenate([np.minimum.accumulate(left[::-1])[::-1][1:], [np.iinfo(np.int64).max]]))
        self._place(canvas, layout.glyph[alone], left[alone], add=False)
        rest = np.flatnonzero(~alone)
        layers = _layers(left[rest], right[rest])
        for layer in range(layers):
            self._place(canvas, layout.glyph[rest[layer::layers]], left[rest[layer::layers]], add=True)
        return canvas.reshape(b, stride, p)

    def _pack(self) -> tuple[np.ndarray, ...]:
        """Every drawn glyph as arrays, rebuilt only after new glyphs were drawn: each glyph's first column in
        `columns`, its width, its first ink column from the pen, all glyphs' ink columns (all columns, P) one after
        another, and the share of its ink outside the line."""
        if self._packed is None:
            widths = np.array([g[1].shape[0] for g in self._glyphs], dtype=np.int64)
            first = np.array([g[0] for g in self._glyphs], dtype=np.int64)
            columns = np.concatenate([g[1] for g in self._glyphs])  # (all columns, P)
            self._packed = (np.cumsum(widths) - widths, widths, first, columns,
                            np.array(self._glyph_lost, dtype=np.float64))
        return self._packed

    def _place(self, canvas: np.ndarray, glyph: np.ndarray, left: np.ndarray, add: bool) -> None:
        """Write (or add) the columns of glyphs that share no column with each other at canvas columns `left`."""
        starts, widths, _, columns, _ = self._packed
        w = widths[glyph]
        step = np.arange(int(w.sum())) - np.repeat(np.cumsum(w) - w, w)  # (cols,) 0..w-1 within each glyph
        target = np.repeat(left, w) + step
        ink = np.take(columns, np.repeat(starts[glyph], w) + step, axis=0)  # (cols, P)
        if add:
            ink += np.take(canvas, target, axis=0)
        as_item = np.dtype((np.void, ink.shape[1] * ink.itemsize))  # a column as one item: np.put copies it whole
        # np.take / np.put are several times faster than fancy indexing for rows this short
        np.put(canvas.view(as_item).reshape(-1), target, ink.view(as_item).reshape(-1))

    def _draw(self, canvas: Image.Image) -> ImageDraw.ImageDraw:
        """A pen on `canvas`: anti-aliased, or for binary lines drawn aliased, without (fontmode "1")."""
        draw = ImageDraw.Draw(canvas)
        if self.cfg.mode == "binary" and self.cfg.binary_draw == "aliased":
            draw.fontmode = "1"
        return draw

    def _draw_glyph(self, ch: str, half: bool) -> tuple[int, np.ndarray, float]:
        """One character: (its first ink column relative to the pen, (w, P) float32 ink of its w columns, the
        share of its ink outside the line)."""
        p, slot = self.cfg.patch, self._chars.slot[ch]
        if self._chars.blank[slot]:
            return 0, np.zeros((0, p), dtype=np.float32), 0.0
        face = self._chars.face[slot]
        font = (self._half_faces if half else self._faces)[face].pil
        width = math.ceil(font.getlength(ch)) + 2 * self._pad
        baseline = self._half_baseline if half else self._baseline

        def draw_at(scale: float, top: int) -> np.ndarray:
            sized = font if scale == 1.0 else load_face(*self._specs[face], font.size * scale, em_box=False).pil
            canvas = Image.new("L", (width, 3 * p))
            self._draw(canvas).text((self._pad, baseline + top), ch, fill=255, font=sized, anchor="ls")
            return np.asarray(canvas)

        pixels, lost, _ = self._inside(draw_at)
        inked = np.flatnonzero(pixels.any(axis=0))
        if not len(inked):
            return 0, np.zeros((0, p), dtype=np.float32), lost
        # the canvas has self._pad blank columns before the pen, so an overhang of up to pad stays inside
        block = pixels[:, inked[0] : inked[-1] + 1].T.astype(np.float32) / 255.0
        return int(inked[0]) - self._pad, np.ascontiguousarray(block), lost


def _layers(left: np.ndarray, right: np.ndarray) -> int:
    """Smallest K such that glyphs K apart (in batch order) never share a canvas column: in every
    layer of every K-th glyph, each block starts at or after where all earlier ones ended."""
    for k in range(1, len(left) + 1):
        if all(np.all(left[j::k][1:] >= np.maximum.accumulate(right[j::k])[:-1]) for j in range(k)):
            return k
    return max(len(left), 1)


@dataclass
class _Layout:
    """A batch after layout: every glyph to draw (flat over lines), and each line's extent."""

    glyph: np.ndarray  # (G,) glyph cache id
    x: np.ndarray  # (G,) whole-pixel pen position in its line
    line: np.ndarray  # (G,) line index
    n_patches: np.ndarray  # (B,) text patches per line, the end-of-sequence patch not included
    truncated: np.ndarray  # (B,) characters cut at max_patches
    shaped_line: np.ndarray  # (B,) lines drawn whole by raqm instead
    kept_codes: np.ndarray  # code points of the characters the glyph cache draws (shaped lines: none)


class _CharTable:
    """Per character seen: its font, advance widths, flags, and first glyph id (per size), as growing
    columns that `array` hands out as numpy arrays for gathering by slot."""

    _COLUMNS = ("face", "blank", "shaped", "wide", "advance", "advance_half")

    def __init__(self) -> None:
        self.slot: dict[str, int] = {}
        self.chars: list[str] = []
        for name in self._COLUMNS:
            setattr(self, name, [])
        self.glyph: list[int] = []  # glyph id per (slot, half size) at 2 * slot + half; -1 until drawn
        self._arrays: dict[str, np.ndarray] = {}

    def add(self, ch: str, **values) -> int:
        """Append a character's row; returns its slot."""
        self.slot[ch] = len(self.chars)
        self.chars.append(ch)
        for name in self._COLUMNS:
            getattr(self, name).append(values[name])
        self.glyph += [-1, -1]
        self._arrays.clear()
        return self.slot[ch]

    def set_glyph(self, key: int, glyph: int) -> None:
        """Record the glyph id drawn for `key` (2 * slot + half size)."""
        self.glyph[key] = glyph
        self._arrays.pop("glyph", None)

    def array(self, name: str) -> np.ndarray:
        """A column as a numpy array, built once per change of the table (glyph ids change as glyphs are drawn)."""
        if name not in self._arrays:
            self._arrays[name] = np.array(getattr(self, name), dtype=np.int64 if name == "glyph" else None)
        return self._arrays[name]


def _codes(text: str) -> np.ndarray:
    """(len(text),) uint32 code points."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def has_visible(text: str) -> bool:
    """True when the text has a character to draw: not whitespace, a control or a format character."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf") for ch in text)


def _check_lines(lines: Sequence[str]) -> None:
    """One-line errors for what cannot be one line of pixels."""
    for index, text in enumerate(lines):
        if not isinstance(text, str) or not has_visible(text):
            raise HotStartError(f"line {index} has nothing to draw (it is empty or only spaces and format "
                                "characters); drop such lines before rendering")
        if "\n" in text or "\r" in text:
            raise HotStartError(f"line {index} contains a line break; split the text into one line per string")


def _needs_shaping(text: str) -> bool:
    """True when the characters' look depends on their neighbours or the line reads right to left."""
    return any(not ch.isascii() and (unicodedata.bidirectional(ch) in _SHAPED_BIDI
                                     or unicodedata.category(ch) in _SHAPED_CATEGORIES) for ch in text)


def bidi_levels(text: str) -> tuple[list[int], int]:
    """The resolved embedding level of every character of one line, and the paragraph's level (0: left to
    right, 1: right to left), by the Unicode bidirectional algorithm over the whole line: python-bidi's
    reference implementation of rules P2-P3, X1-X10, W1-W7, N1-N2 and I1-I2, then L1 for the line's trailing
    whitespace. Characters X9 sets aside (explicit codes, boundary neutrals such as joiners) take the level of
    the character before them. A line with nothing right to left is all level 0, without running it."""
    if not any(unicodedata.bidirectional(ch) in _SHAPED_BIDI for ch in text):
        return [0] * len(text), 0
    from bidi.algorithm import (
        explicit_embed_and_overrides,
        get_base_level,
        get_embedding_levels,
        get_empty_storage,
        resolve_implicit_levels,
        resolve_neutral_types,
        resolve_weak_types,
    )

    base = get_base_level(text)
    storage = get_empty_storage()
    storage["base_level"], storage["base_dir"] = base, "LR"[base]
    get_embedding_levels(text, storage)
    for index, char in enumerate(storage["chars"]):
        char["index"] = index  # the character's place in `text`, kept through X9's removals
        if char["type"] in _ISOLATES:  # the reference algorithm predates isolates: read them as neutrals
            char["type"] = char["orig"] = "ON"
    explicit_embed_and_overrides(storage)
    resolve_weak_types(storage)
    resolve_neutral_types(storage, False)
    resolve_implicit_levels(storage, False)
    resolved = {char["index"]: char["level"] for char in storage["chars"]}
    levels, level = [], base
    for index in range(len(text)):
        level = resolved.get(index, level)
        levels.append(level)
    trailing = len(text) - len(text.rstrip())
    levels[len(text) - trailing :] = [base] * trailing  # L1: trailing whitespace at the paragraph level
    return levels, base


def visual_runs(text: str, faces: list[int], levels: list[int], base: int) -> list[tuple[int, int, str]]:
    """(face, level, characters in logical order) runs of one line in visual order, left to right: the line
    cut wherever the face or the level changes, then rule L2 (from the highest level down to the lowest odd
    one, every sequence of runs at that level or above reversed). Each run is drawn in its own direction."""
    trailing = len(text) - len(text.rstrip())
    levels = levels[: len(text) - trailing] + [base] * trailing  # L1 for this line's own end
    runs: list[tuple[int, int, str]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or (faces[i], levels[i]) != (faces[start], levels[start]):
            runs.append((faces[start], levels[start], text[start:i]))
            start = i
    odd = [level for _, level, _ in runs if level % 2]
    for level in range(max((lvl for _, lvl, _ in runs), default=0), min(odd, default=1) - 1, -1):
        i = 0
        while i < len(runs):
            if runs[i][1] >= level:
                j = i
                while j < len(runs) and runs[j][1] >= level:
                    j += 1
                runs[i:j] = runs[i:j][::-1]
                i = j
            else:
                i += 1
    return runs


def _words(run: str, level: int) -> list[str]:
    """A run cut into words and the spaces between them, in visual order (a right-to-left run's words reversed)."""
    pieces = [piece for piece in re.split(r"(\s+)", run) if piece]
    return pieces[::-1] if level % 2 else pieces


def _longest_prefix(fits, n: int) -> int:
    """Largest k <= n with fits(k) (fits is monotone): n where the whole text fits (most lines), else by bisection."""
    if fits(n):
        return n
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def line_image(patches: np.ndarray) -> Image.Image:
    """A line's patches (n, P, P[, 3]) back into one image, black ink on white."""
    n, p = patches.shape[0], patches.shape[1]
    line = patches.transpose(1, 0, 2, *range(3, patches.ndim)).reshape(p, n * p, *patches.shape[3:])
    return Image.fromarray(np.round((1.0 - line) * 255).astype(np.uint8))
