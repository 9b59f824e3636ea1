"""Tests for hotstart.render.line: a line of text as patches (geometry, cells, modes, cutting,
shaping of complex scripts against the unshaped drawing, the font chain, bad input, the CLI)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from hotstart.cli import main
from hotstart.errors import HotStartError
from hotstart.render.fonts import default_font, load_face, script_fonts
from hotstart.render.line import LineRenderConfig, LineRenderer, _layers

HAN = "我们在这里测试一个中文句子的渲染"
MIXED = "汉字和Latin混排，还有кириллица。"


@pytest.fixture(scope="module")
def renderer() -> LineRenderer:
    return LineRenderer(LineRenderConfig())


def _font(spec_path: str, em_px: int, shaped: bool, face: int = 0) -> ImageFont.FreeTypeFont:
    return load_face(spec_path, face, em_px, shaped=shaped, em_box=False).pil


def _draw_whole(text: str, font: ImageFont.FreeTypeFont, cfg: LineRenderConfig, baseline: float, width: int) -> np.ndarray:
    """The line drawn whole by Pillow into a (P, width) ink array: the reference the renderer must match."""
    canvas = Image.new("L", (width, cfg.patch))
    ImageDraw.Draw(canvas).text((0, baseline), text, fill=255, font=font, anchor="ls")
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _line(patches: np.ndarray) -> np.ndarray:
    """(n, P, P) patches back into one (P, n * P) line."""
    n, p = patches.shape[:2]
    return patches.transpose(1, 0, 2).reshape(p, n * p)


def _baseline(cfg: LineRenderConfig) -> float:
    path, face = default_font()
    return cfg.margin_px + load_face(path, face, cfg.em_px, em_box=False).ascender_px


def test_a_line_ends_in_one_full_ink_patch_and_is_blank_after_it(renderer: LineRenderer) -> None:
    batch = renderer.render_batch([HAN, HAN[:3]])
    n = int(batch.lengths[0])
    assert batch.patches.shape == (2, 529, 16, 16) and batch.patches.dtype == np.float32
    assert n == math.ceil(len(HAN) * 14 / 16) + 1  # Han characters advance one em (14 px at patch 16)
    assert np.all(batch.patches[0, n - 1] == 1.0)
    assert not batch.patches[0, n:].any() and not batch.patches[1, batch.lengths[1]:].any()
    assert all(batch.patches[0, i].sum() > 5 for i in range(n - 1))  # every text patch has ink
    assert (batch.attention_mask.sum(axis=1) == batch.lengths).all()
    assert batch.truncated.tolist() == [0, 0] and batch.missing == {}


@pytest.mark.parametrize("text", [MIXED, "AVAWAV Tyjy ffl"])  # the second: neighbours' ink overlaps
def test_the_glyph_cache_draws_exactly_what_pillow_draws_for_the_whole_line(renderer: LineRenderer, text: str) -> None:
    cfg = renderer.cfg
    ours = _line(renderer.render(text)[:-1])
    path, face = default_font()
    whole = _draw_whole(text, _font(path, cfg.em_px, False, face), cfg, _baseline(cfg), ours.shape[1])
    # FreeType's hinted advances and Pillow's pen are whole pixels, so the cache reproduces it exactly
    np.testing.assert_allclose(ours, whole, atol=1e-6)


def test_glyph_blocks_that_share_columns_go_to_different_layers() -> None:
    assert _layers(np.array([0, 10, 20]), np.array([10, 20, 30])) == 1  # touching, not sharing
    assert _layers(np.array([0, 9, 18]), np.array([10, 19, 28])) == 2  # each overlaps the next
    assert _layers(np.array([0, 2, 4, 30]), np.array([12, 14, 16, 40])) == 3  # three deep


def test_a_long_line_is_cut_at_a_whole_character_and_the_cut_is_counted() -> None:
    cut = LineRenderer(LineRenderConfig(max_patches=6))
    batch = cut.render_batch([HAN])
    kept = len(HAN) - int(batch.truncated[0])
    assert kept == (5 * 16) // 14 and batch.lengths[0] == 6  # 5 text patches hold 5 Han characters of 14 px
    alone = LineRenderer(LineRenderConfig(max_patches=529)).render(HAN[:kept])
    np.testing.assert_allclose(batch.patches[0, :6], alone, atol=1e-6)


def test_lines_of_a_batch_do_not_affect_each_other(renderer: LineRenderer) -> None:
    batch = renderer.render_batch([HAN, MIXED, "שלום עולם"])
    for i, text in enumerate([HAN, MIXED, "שלום עולם"]):
        np.testing.assert_array_equal(batch.patches[i, : batch.lengths[i]], renderer.render(text))


def test_char_cells_hold_one_character_each_and_a_space_leaves_its_patch_blank() -> None:
    patches = LineRenderer(LineRenderConfig(cell="char")).render("山 水a")
    assert patches.shape[0] == 4 + 1
    ink = patches[:-1].sum(axis=(1, 2))
    assert ink[1] == 0 and all(ink[i] > 5 for i in (0, 2, 3))
    left, right = patches[0][:, :8].sum(), patches[0][:, 8:].sum()
    assert abs(left - right) / (left + right) < 0.25  # centred in its cell


def test_bigram_cells_hold_two_characters_and_draw_han_at_half_size() -> None:
    bigram = LineRenderer(LineRenderConfig(cell="bigram")).render("山水中国林")
    assert bigram.shape[0] == 3 + 1  # ceil(5 / 2) text patches
    first = bigram[0]
    assert first[:, :8].sum() > 3 and first[:, 8:].sum() > 3  # one character in each half
    rows = np.flatnonzero(first.sum(axis=1) > 0.05)
    assert rows.min() >= 4 and rows.max() <= 12  # half size: a 7 px em box centred in the line (rows 4.5 to 11.5)
    full_rows = np.flatnonzero(LineRenderer(LineRenderConfig(cell="char")).render("山")[0].sum(axis=1) > 0.05)
    assert full_rows.max() - full_rows.min() > rows.max() - rows.min() + 3


def test_binary_mode_thresholds_grey_and_rgb_repeats_it() -> None:
    grey = LineRenderer(LineRenderConfig()).render(MIXED)
    binary = LineRenderer(LineRenderConfig(mode="binary", binary_threshold=0.4)).render(MIXED)
    rgb = LineRenderer(LineRenderConfig(mode="rgb")).render(MIXED)
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (grey > 0.4).astype(np.float32))
    assert rgb.shape == grey.shape + (3,)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)


def _script_font(name: str) -> str:
    return next(p for p in script_fonts() if name in p)


@pytest.mark.parametrize("text, font, reorder", [("שלום", "DejaVuSans", True), ("مرحبا", "DejaVuSans", False),
                                                 ("क्षत्रिय", "Shobhika", False)])
def test_complex_scripts_are_shaped_unlike_the_unshaped_drawing(renderer: LineRenderer, text: str, font: str,
                                                                reorder: bool) -> None:
    cfg = renderer.cfg
    ours = _line(renderer.render(text)[:-1])
    path = _script_font(font)
    width = ours.shape[1] + 4 * cfg.patch
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])))
    unshaped = _draw_whole(text, _font(path, cfg.em_px, False), cfg, _baseline(cfg), width)
    shaped = _draw_whole(text, _font(path, cfg.em_px, True), cfg, _baseline(cfg), width)
    assert np.abs(pad(ours) - shaped).mean() < 0.005  # the line is raqm's drawing
    assert np.abs(pad(ours) - unshaped).mean() > 0.02  # and not the characters side by side
    if reorder:  # Hebrew: right to left, so like the reversed string drawn unshaped
        reversed_ = _draw_whole(text[::-1], _font(path, cfg.em_px, False), cfg, _baseline(cfg), width)
        assert np.abs(pad(ours) - reversed_).mean() < np.abs(pad(ours) - unshaped).mean() / 3
    if font == "Shobhika":  # conjuncts: fewer glyphs than characters, so a narrower line
        ink_cols = lambda a: np.flatnonzero(a.sum(axis=0) > 0).max()
        assert ink_cols(pad(ours)) < ink_cols(unshaped)


def test_the_font_chain_draws_other_scripts_and_counts_what_no_font_has(renderer: LineRenderer) -> None:
    batch = renderer.render_batch(["山 שלום \U00013000"])
    assert batch.fonts_used.get("DejaVu Sans") == 4 and batch.fonts_used.get("Noto Sans CJK SC") == 1
    assert batch.missing == {"\U00013000": 1}
    strict = LineRenderer(LineRenderConfig(missing="error"))
    with pytest.raises(HotStartError, match=r"U\+13000"):
        strict.render("山\U00013000")
    blank = renderer.render("\U00013000山")
    assert blank[0][:, :6].sum() == 0  # drawn as background


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "一行\n两行"])
def test_a_line_with_nothing_to_draw_or_a_line_break_is_refused(renderer: LineRenderer, text: str) -> None:
    with pytest.raises(HotStartError, match="nothing to draw|line break"):
        renderer.render_batch(["好", text])


@pytest.mark.parametrize("field, value", [("patch", 3), ("mode", "foo"), ("cell", "foo"), ("max_patches", 1),
                                          ("margin", 0.5), ("missing", "fallback"), ("binary_threshold", 1.5)])
def test_a_bad_setting_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(HotStartError, match=field):
        LineRenderer(LineRenderConfig(**{field: value}))


def test_settings_record_every_font_of_the_chain_with_its_hash(renderer: LineRenderer) -> None:
    settings = renderer.settings()
    assert settings["patch"] == 16 and settings["cell"] == "free" and settings["max_patches"] == 529
    names = [f["name"] for f in settings["fonts"]]
    assert names[0] == "Noto Sans CJK SC" and "DejaVu Sans" in names
    for font in settings["fonts"]:
        assert font["sha256"] == hashlib.sha256(Path(font["path"]).read_bytes()).hexdigest()


def test_render_text_writes_the_line_and_warns_about_a_cut(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "line.png"
    assert main(["render-text", "--text", "山水", "--zoom", "2", "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.size == (2 * 16 * 3, 2 * 16)  # two Han characters of 14 px fill 2 patches, then the end patch
    assert np.asarray(image.convert("L"))[:, -1].max() == 0  # the end patch is black
    assert main(["render-text", "--text", HAN, "--max-patches", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{len(HAN) - 3} of {len(HAN)} characters cut" in err
    assert main(["render-text", "--text", "\u200b", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --text has nothing to draw")
