"""Glyph thumbnails and the glyph bank (the font files themselves: fonts.py).

Every character of the vocabulary is drawn as a small R x R grayscale picture (paper sec. "Vision
input"): the font's em box is mapped onto an ink box inside a blank margin, drawn large with
FreeType, and shrunk by exact area averaging so that even a 4 x 4 thumbnail keeps the ink mass of
the full-size glyph. Pixels are ink coverage: 0.0 is background, 1.0 is full ink, so the zero
padding of a convolution is plain background.

The glyph bank (one thumbnail per vocabulary entry) is cached on disk, keyed by everything that
changes its pixels: the font file's hash and face, the geometry, the missing-glyph policy, the
fallback fonts and the token list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features
from PIL import __version__ as PILLOW_VERSION
from tqdm import tqdm

from .. import config
from ..errors import HotStartError
from .fonts import (
    Face,
    FontInfo,
    default_font,
    describe_chars,
    load_face,
    parse_font_spec,
)

MISSING_POLICIES = ("blank", "error", "fallback")
KEEP_REGIONS = ("all", "centre", "border")
DEFAULT_CENTRE_SHARE = 0.3  # the paper's "about 30% of pixels"
SPECIAL_GLYPHS = ("<pad>", "<unk>", "<sep>")  # the special tokens this renderer can draw
GRID_RESOLUTIONS = (4, 8, 20, 40)  # default rows of the preview grid, a spread of the paper's grid
_CACHE_FORMAT = 1  # bump whenever rendering changes, so older cache files are never reused
_PROGRESS_MIN_TOKENS = 2000  # a bar for a sub-second job is only noise


@dataclass
class RenderConfig:
    """How characters become thumbnails; the geometry is derived from these fields alone."""

    res: int = 8
    """Thumbnail side R in pixels, 4 <= R <= 128 (paper grid: 4, 8, 20, 30, 40, 80, 96)."""
    margin: float = 0.1
    """Fraction of R left blank on each side, 0 <= margin < 0.5; margin px = floor(margin*R + 0.5)."""
    crop: float = 1.0
    """Fraction of the ink box's rows kept from the top, 0 < crop <= 1 (paper Vision-100/80/50%)."""
    keep: str = "all"
    """Which pixels of the ink box are drawn: all, centre (centre_region) or border (the rest); the
    crop generalised to masks, applied after it."""
    centre_share: float = DEFAULT_CENTRE_SHARE
    """Share of the ink box's pixels that make its centre (rounded to whole rings, centre_region); the
    masks blank specials too, so under keep=centre <unk>'s outline is as blank as <pad>."""
    font: str | None = None
    """Path to a TTF/OTF/TTC file; None is the default Noto Sans CJK SC."""
    face: int | None = None
    """Face index in a font collection; None is the SC face of the default font, 0 for others."""
    missing: str = "blank"
    """A character the font lacks: "blank" draws nothing, "error" stops, "fallback" asks fallback_fonts."""
    fallback_fonts: list[str] = field(default_factory=list, metadata=config.flag("fallback-font", repeat=True))
    """Fonts tried in order when missing == "fallback", each "path" or "path#face"."""

    @property
    def margin_px(self) -> int:
        """Blank pixels on each side of the thumbnail."""
        return math.floor(self.margin * self.res + 0.5)

    @property
    def ink_px(self) -> int:
        """Side of the square ink box that the font's em box is mapped onto."""
        return self.res - 2 * self.margin_px

    @property
    def rows(self) -> int:
        """Rows of the ink box kept by the crop (at least one)."""
        return max(1, math.floor(self.crop * self.ink_px + 0.5))

    @property
    def supersample(self) -> int:
        """Glyphs are drawn k times larger than R, at least 128 px, then area-averaged down."""
        return max(4, math.ceil(128 / self.res))

    def validate(self) -> None:
        """Raise HotStartError naming the first bad field, its value and what is allowed."""
        _require(_is_int(self.res) and 4 <= self.res <= 128, "res", self.res, "an integer from 4 to 128")
        _require(_is_number(self.margin) and 0 <= self.margin < 0.5, "margin", self.margin, "0 <= margin < 0.5")
        _require(_is_number(self.crop) and 0 < self.crop <= 1, "crop", self.crop, "0 < crop <= 1")
        _require(self.keep in KEEP_REGIONS, "keep", self.keep, "all, centre or border")
        _require(_is_number(self.centre_share) and 0 < self.centre_share < 1, "centre_share", self.centre_share,
                 "0 < centre_share < 1")
        _require(self.missing in MISSING_POLICIES, "missing", self.missing, "blank, error or fallback")
        _require(self.face is None or (_is_int(self.face) and self.face >= 0), "face", self.face, "an index >= 0")
        _require(self.font is None or isinstance(self.font, str), "font", self.font, "a font file path")
        fonts = self.fallback_fonts
        fonts_ok = isinstance(fonts, (list, tuple)) and all(isinstance(f, str) for f in fonts)
        _require(fonts_ok, "fallback_fonts", fonts, 'a list of "path" or "path#face" strings')
        if self.ink_px < 1:
            raise HotStartError(
                f"render margin {self.margin} leaves no ink area at res {self.res}; "
                "use a smaller margin or a larger res"
            )
        if self.keep == "all" and self.centre_share != DEFAULT_CENTRE_SHARE:
            raise HotStartError(f"render option centre_share={self.centre_share} is only read with keep centre or border; "
                                "add --keep centre or --keep border")
        if self.keep != "all" and centre_region(self).sum() == self.ink_px ** 2:
            raise HotStartError(f"render option centre_share={self.centre_share} makes the centre the whole "
                                f"{self.ink_px}x{self.ink_px} ink box at res {self.res}; use a smaller --centre-share")
        if self.missing == "fallback" and not self.fallback_fonts:
            raise HotStartError("missing=fallback needs a fallback font; add --fallback-font PATH")
        if self.fallback_fonts and self.missing != "fallback":
            raise HotStartError(
                f"fallback fonts are only used with missing=fallback, not {self.missing}; add --missing fallback"
            )


def centre_region(cfg: RenderConfig) -> np.ndarray:
    """(R, R) bool: the ink box's centre, the whole rings of pixels nearest its middle (by Euclidean
    distance) whose count is nearest cfg.centre_share of the box (fewer rings on a tie, at least one).

    Our reading of the paper's "central 30% of pixels": a share of the ink box, not of the thumbnail,
    since the margin is blank in every glyph; whole rings, so the region has the square's symmetry
    (the share it really holds is `region.sum() / ink_px**2`: 33% at 8x8, 25% at 4x4 for 0.3).
    """
    m, n = cfg.margin_px, cfg.ink_px
    mid = (n - 1) / 2
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    dist2 = (rows - mid) ** 2 + (cols - mid) ** 2  # (n, n), exact in halves, so rings compare exactly
    rings = np.unique(dist2)
    counts = np.array([(dist2 <= r).sum() for r in rings])  # pixels within each ring, growing
    want = cfg.centre_share * n * n
    radius = rings[int(np.argmin(np.abs(counts - want)))]  # argmin takes the first: fewer rings on a tie
    region = np.zeros((cfg.res, cfg.res), dtype=bool)
    region[m : m + n, m : m + n] = dist2 <= radius
    return region


def keep_mask(cfg: RenderConfig) -> np.ndarray | None:
    """(R, R) float32 1 where a pixel is drawn under cfg.keep, 0 where it is blanked; None for all."""
    if cfg.keep == "all":
        return None
    centre = centre_region(cfg)
    return (centre if cfg.keep == "centre" else ~centre).astype(np.float32)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise HotStartError(f"render option {name}={value!r} is not allowed; use {allowed}")


# ----------------------------------------------------------------------------- glyphs


@dataclass
class GlyphBank:
    """One thumbnail per vocabulary entry, with what went wrong and how it was rendered."""

    glyphs: np.ndarray  # (V, R, R) float32 ink coverage, row i = tokens[i]
    missing: list[str]  # characters no font had, in token order (rendered blank)
    fallback_used: dict[str, str]  # char -> name of the fallback font that supplied it
    settings: dict  # res, margin, crop, font name/path/face/sha256, missing policy, fallback fonts


def _block_mean(box: np.ndarray, k: int) -> np.ndarray:
    """Exact mean of each k x k block of a uint8 coverage image, scaled to [0, 1].

    Same result as box.reshape(rows, k, cols, k).mean((1, 3)) / 255, but the integer sums run
    along long axes first (~3x faster at 8x8). Matrix products would be faster still, but
    OpenBLAS threads them and under CPU contention that is 10-30x slower.
    """
    rows, cols = box.shape[0] // k, box.shape[1] // k
    sums = box.reshape(rows, k, cols * k).sum(axis=1, dtype=np.uint32)  # (rows, cols*k)
    sums = sums.reshape(rows, cols, k).sum(axis=2)  # (rows, cols), at most 255*k*k
    return sums / (255.0 * k * k)


class GlyphRenderer:
    """Renders characters with one RenderConfig (validated in __init__).

    Not thread-safe: every render reuses one canvas, which keeps a 20k-glyph bank to seconds.
    """

    def __init__(self, cfg: RenderConfig) -> None:
        cfg.validate()
        self.cfg = cfg
        path, face = (cfg.font, 0) if cfg.font is not None else default_font()
        em_px = cfg.ink_px * cfg.supersample
        self._primary = load_face(path, face if cfg.face is None else cfg.face, em_px)
        self._fallbacks = [load_face(*parse_font_spec(s), em_px) for s in cfg.fallback_fonts]
        self.font: FontInfo = self._primary.info
        k, m, n = cfg.supersample, cfg.margin_px, cfg.ink_px
        self._canvas = Image.new("L", (cfg.res * k, cfg.res * k))
        self._draw = ImageDraw.Draw(self._canvas)
        self._em_left = m * k  # canvas px; the ink box starts on a k-pixel block boundary
        self._em_px = n * k
        # the kept part of the ink box, on the canvas and in the thumbnail; overhangs are clipped
        self._canvas_box = (slice(m * k, (m + cfg.rows) * k), slice(m * k, (m + n) * k))
        self._thumb_box = (slice(m, m + cfg.rows), slice(m, m + n))
        self._keep = keep_mask(cfg)  # (R, R) or None

    def has_glyph(self, ch: str) -> bool:
        """Whether the primary font maps the single character `ch` to a glyph."""
        return len(ch) == 1 and ord(ch) in self._primary.cmap

    def render(self, ch: str) -> np.ndarray:
        """(R, R) float32 thumbnail of one character, following the missing-glyph policy."""
        if len(ch) != 1:
            raise HotStartError(f"cannot render {ch!r}: a token must be a single character or a special")
        face = self._face_for(ch)
        if face is not None:
            return self._rasterise(face, ch)
        if self.cfg.missing == "error":
            raise HotStartError(self._missing_error([ch]))
        return np.zeros((self.cfg.res, self.cfg.res), dtype=np.float32)

    def _face_for(self, ch: str) -> Face | None:
        """The first font that has `ch`: the primary, then (policy "fallback") each fallback."""
        if ord(ch) in self._primary.cmap:
            return self._primary
        return next((f for f in self._fallbacks if ord(ch) in f.cmap), None)

    def _rasterise(self, face: Face, ch: str) -> np.ndarray:
        """Draw `ch` large, em box on the ink box, advance centred; area-average down; crop."""
        out = np.zeros((self.cfg.res, self.cfg.res), dtype=np.float32)
        if ch.isspace() or unicodedata.category(ch) == "Cc":
            return out  # no ink by definition (and Pillow would treat "\n" as a line break)
        x = self._em_left + (self._em_px - face.pil.getlength(ch)) / 2
        self._canvas.paste(0, (0, 0) + self._canvas.size)
        self._draw.text((x, self._em_left + face.ascender_px), ch, fill=255, font=face.pil, anchor="ls")
        box = np.asarray(self._canvas)[self._canvas_box]  # (rows*k, n*k) uint8
        out[self._thumb_box] = _block_mean(box, self.cfg.supersample)  # (rows, n)
        return out if self._keep is None else out * self._keep

    def _special(self, token: str) -> np.ndarray:
        """Synthetic glyph: <pad> blank, <unk> a 1-px outline of the ink box, <sep> the box filled."""
        cfg, m, n = self.cfg, self.cfg.margin_px, self.cfg.ink_px
        out = np.zeros((cfg.res, cfg.res), dtype=np.float32)
        if token in ("<unk>", "<sep>"):
            out[m : m + n, m : m + n] = 1.0
        if token == "<unk>":
            out[m + 1 : m + n - 1, m + 1 : m + n - 1] = 0.0
        out[m + cfg.rows :] = 0.0  # the crop hides the same rows of every glyph, specials included
        return out if self._keep is None else out * self._keep  # and so does the kept region

    def _missing_error(self, missing: Sequence[str]) -> str:
        return (
            f"{len(missing)} character(s) are not in font {self.font.name}: {describe_chars(missing)}; "
            "use --missing blank to render them blank, or --missing fallback --fallback-font PATH"
        )

    def settings(self) -> dict:
        """Everything that determines the pixels, for the run folder and the cache key."""
        cfg = self.cfg
        return {
            "res": cfg.res,
            "margin": cfg.margin,
            "crop": cfg.crop,
            "keep": cfg.keep,
            "centre_share": cfg.centre_share,
            "font_name": self.font.name,
            "font_path": self.font.path,
            "face": self.font.face,
            "font_sha256": self.font.sha256,
            "missing": cfg.missing,
            "fallback_fonts": [dataclasses.asdict(f.info) for f in self._fallbacks],
        }

    def render_bank(
        self,
        tokens: Sequence[str],
        specials: Sequence[str] = (),
        cache_dir: str | Path | None = None,
        progress: bool = True,
    ) -> GlyphBank:
        """Thumbnails for a vocabulary, rendered once and then loaded from the on-disk cache."""
        tokens, specials = list(tokens), list(specials)
        _check_tokens(tokens, specials)
        path = _cache_root(cache_dir) / "glyphs" / f"{self._cache_key(tokens, specials)}.npz"
        bank = _load_bank(path, len(tokens), self.cfg.res, self.settings())
        if bank is None:
            bank = self._render_all(tokens, set(specials), progress)
            _save_bank(bank, path)
        self._warn_missing(tokens, bank)
        return bank

    def _render_all(self, tokens: list[str], specials: set[str], progress: bool) -> GlyphBank:
        """Render every token (no cache); under policy "error" first refuse any missing character."""
        lacking = [t for t in dict.fromkeys(tokens) if t not in specials and not self.has_glyph(t)]
        if lacking and self.cfg.missing == "error":
            raise HotStartError(self._missing_error(lacking))
        glyphs = np.zeros((len(tokens), self.cfg.res, self.cfg.res), dtype=np.float32)  # (V, R, R)
        quiet = not progress or len(tokens) < _PROGRESS_MIN_TOKENS
        for i, token in enumerate(tqdm(tokens, desc="rendering glyphs", unit="glyph", disable=quiet)):
            glyphs[i] = self._special(token) if token in specials else self.render(token)
        fallback_used = {c: f.info.name for c in lacking if (f := self._face_for(c)) is not None}
        missing = [c for c in lacking if c not in fallback_used]
        return GlyphBank(glyphs, missing, fallback_used, self.settings())

    def _warn_missing(self, tokens: list[str], bank: GlyphBank) -> None:
        """One stderr line: how many characters the primary font lacked and what was done."""
        unrendered = set(bank.missing) | set(bank.fallback_used)
        lacking = [t for t in dict.fromkeys(tokens) if t in unrendered]
        if not lacking:
            return
        action = f"{len(bank.missing)} rendered blank"
        if self.cfg.missing == "fallback":
            action = f"{len(bank.fallback_used)} taken from fallback fonts, " + action
        print(
            f"warning: {len(lacking)} of {len(tokens)} characters are not in font {self.font.name} "
            f"({describe_chars(lacking)}); missing={self.cfg.missing}: {action}",
            file=sys.stderr,
        )

    def _cache_key(self, tokens: list[str], specials: list[str]) -> str:
        """sha256 of a canonical JSON of what changes the pixels (not file paths or names)."""
        settings = self.settings()
        key = {k: v for k, v in settings.items() if k not in ("font_name", "font_path")}
        key["fallback_fonts"] = [(f["sha256"], f["face"]) for f in settings["fallback_fonts"]]
        key.update(
            format=_CACHE_FORMAT,
            freetype=features.version("freetype2"),
            pillow=PILLOW_VERSION,
            specials=specials,
            tokens=tokens,
        )
        text = json.dumps(key, sort_keys=True, ensure_ascii=True)  # ascii: lone surrogates survive
        return hashlib.sha256(text.encode("ascii")).hexdigest()


def _check_tokens(tokens: list[str], specials: list[str]) -> None:
    unknown = [s for s in specials if s not in SPECIAL_GLYPHS]
    if unknown:
        raise HotStartError(f"unknown special token(s) {unknown}; the renderer draws {', '.join(SPECIAL_GLYPHS)}")
    special = set(specials)
    bad = [t for t in tokens if t not in special and (not isinstance(t, str) or len(t) != 1)]
    if bad:
        raise HotStartError(
            f"{len(bad)} token(s) are neither one character nor a special, e.g. {bad[:5]}; "
            "list multi-character tokens in specials"
        )


# ----------------------------------------------------------------------------- cache


def _cache_root(cache_dir: str | Path | None) -> Path:
    """cache_dir, else $HOTSTART_CACHE, else ~/.cache/hotstart."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("HOTSTART_CACHE") or Path.home() / ".cache" / "hotstart")


def _load_bank(path: Path, n_tokens: int, res: int, settings: dict) -> GlyphBank | None:
    """The cached bank at `path`, or None if there is none or it cannot be used (with a warning)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            glyphs = data["glyphs"]
            missing = json.loads(str(data["missing"]))
            fallback_used = json.loads(str(data["fallback_used"]))
        if glyphs.shape != (n_tokens, res, res) or glyphs.dtype != np.float32:
            raise ValueError(f"glyphs have shape {glyphs.shape} {glyphs.dtype}")
    except Exception as exc:  # noqa: BLE001 - any damage (truncated zip, bad JSON, wrong shape) means render again
        print(f"warning: glyph cache {path} is unreadable ({exc}); rendering again", file=sys.stderr)
        return None
    # settings come from this run: the same font file may now live at another path
    return GlyphBank(glyphs, missing, fallback_used, settings)


def _save_bank(bank: GlyphBank, path: Path) -> None:
    """Write the bank atomically (temp file + os.replace); a cache that cannot be written is skipped."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.stem, suffix=".tmp", delete=False) as fh:
            tmp = fh.name
            np.savez(
                fh,
                glyphs=bank.glyphs,
                missing=np.array(json.dumps(bank.missing)),
                fallback_used=np.array(json.dumps(bank.fallback_used)),
                settings=np.array(json.dumps(bank.settings)),
            )
        os.replace(tmp, path)
    except OSError as exc:
        print(f"warning: cannot write glyph cache {path} ({exc}); continuing without it", file=sys.stderr)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# ----------------------------------------------------------------------------- preview grid

_LABEL_PX = 96  # width of the label column; fits "128x128 100%" in Pillow's default font
_GAP_PX = 2
_GAP_GREY = 160


def render_grid(
    chars: str,
    out_path: str | Path,
    cfg: RenderConfig,
    resolutions: Sequence[int] | None = None,
    crops: Sequence[float] = (1.0, 0.8, 0.5),
    cell_px: int = 96,
) -> Path:
    """PNG preview: one row per (resolution, crop), one column per character, ink dark on white.

    Size: width = 96 + len(chars) * (cell_px + 2) + 2, height = rows * (cell_px + 2) + 2.
    Default resolutions: cfg.res and the paper's 4, 8, 20, 40 that leave an ink box at cfg.margin.
    """
    if resolutions is None:
        wanted = sorted({cfg.res, *GRID_RESOLUTIONS})
        resolutions = [r for r in wanted if config.replace(cfg, res=r).ink_px >= 1]
    rows = [(r, c) for r in resolutions for c in crops]
    step = cell_px + _GAP_PX
    sheet = Image.new("L", (_LABEL_PX + len(chars) * step + _GAP_PX, len(rows) * step + _GAP_PX), _GAP_GREY)
    draw, label_font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for row, (res, crop) in enumerate(rows):
        renderer = GlyphRenderer(config.replace(cfg, res=res, crop=crop))
        y = _GAP_PX + row * step
        draw.rectangle((0, y, _LABEL_PX - 1, y + cell_px - 1), fill=255)
        label = f"{res}x{res} {crop * 100:g}%"
        draw.text((6, y + cell_px // 2), label, fill=0, font=label_font, anchor="lm")
        for col, ch in enumerate(chars):
            pixels = np.round((1.0 - renderer.render(ch)) * 255).astype(np.uint8)  # dark ink on white
            cell = Image.fromarray(pixels).resize((cell_px, cell_px), Image.Resampling.NEAREST)
            sheet.paste(cell, (_LABEL_PX + _GAP_PX + col * step, y))
    from ..options import write_file

    return write_file(out_path, sheet.save)
