"""Tests for hotstart.render.line: text lines drawn as PIXEL-style patches.

Geometry of the padded batch, the fast path (cached glyphs at their pen positions) against Pillow drawing
the whole line, truncation, batch independence, char and bigram cells, the three modes, shaping of
Hebrew, Devanagari and Arabic against Pillow's unshaped (BASIC) drawing, the font chain and missing
characters, bad input, the recorded settings and the `render-text` command.

Fonts used, all from pip packages in the project's environment:
- Noto Sans CJK SC from `noto-cjk-sans-otc` (the default primary: Han, Latin, Cyrillic);
- Shobhika from `devanagari-fonts` (Devanagari), found by fonts.script_fonts();
- DejaVu Sans from `matplotlib` (Hebrew, Arabic), found by fonts.script_fonts().
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hotstart.cli import main
from hotstart.errors import HotStartError
from hotstart.render.fonts import default_font, load_face, script_fonts
from hotstart.render.line import LineRenderConfig, LineRenderer, _layers, line_image

HIEROGLYPH = "\U00013000"  # EGYPTIAN HIEROGLYPH A001: in no font of the chain
HAN_LINE = "我们在北京学习中文"  # 9 Han characters, 14 px each at patch 16
MIXED_LINE = "我们在北京学习Python和AI模型"  # simple text: Han and Latin, no shaping


@functools.cache
def renderer(**kw: object) -> LineRenderer:
    """Renderers are reused across tests; building one loads the chain's cmaps.

    List fields are passed as tuples, which functools.cache can hash.
    """
    return LineRenderer(LineRenderConfig(**{k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}))


def script_font(name: str) -> str:
    """The path of the installed script font whose file name contains `name` (Shobhika, DejaVuSans)."""
    (path,) = [p for p in script_fonts() if name in Path(p).name]
    return path


def as_line(patches: np.ndarray) -> np.ndarray:
    """(n, P, P) patches side by side: (P, n * P) ink."""
    n, p = patches.shape[:2]
    return patches.transpose(1, 0, 2).reshape(p, n * p)


def text_ink(r: LineRenderer, text: str) -> np.ndarray:
    """The renderer's ink over the line's text patches (the end-of-sequence patch left out)."""
    return as_line(r.render(text)[:-1])


def pillow_line(text: str, path: str, face: int, width: int, cfg: LineRenderConfig) -> np.ndarray:
    """`text` drawn whole by Pillow's BASIC layout (no shaping, no reordering) at the renderer's size and
    baseline, as (P, width) ink; asserts that no ink falls past `width`."""
    noto = load_face(*default_font(), cfg.em_px, em_box=False)
    font = load_face(path, face, cfg.em_px, em_box=False).pil  # BASIC layout
    canvas = Image.new("L", (width + 4 * cfg.patch, cfg.patch))
    ImageDraw.Draw(canvas).text((0, cfg.margin_px + noto.ascender_px), text, fill=255, font=font, anchor="ls")
    ink = np.asarray(canvas, dtype=np.float32) / 255.0
    assert not ink[:, width:].any(), "the reference drawing is wider than the rendered line"
    return ink[:, :width]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# ----------------------------------------------------------------------------- geometry


def test_a_free_chinese_line_fills_its_patches_then_ends_with_a_full_patch_and_zeros() -> None:
    cfg = LineRenderConfig()
    batch = renderer().render_batch([HAN_LINE])
    n = math.ceil(len(HAN_LINE) * cfg.em_px / cfg.patch) + 1  # 9 x 14 px -> 8 text patches + end
    assert batch.patches.shape == (1, cfg.max_patches, 16, 16) and batch.patches.dtype == np.float32
    assert batch.lengths.tolist() == [n] and batch.truncated.tolist() == [0]
    assert batch.missing == {} and batch.fonts_used == {"Noto Sans CJK SC": len(HAN_LINE)}
    patches = batch.patches[0]
    assert (patches[n - 1] == 1.0).all()  # end-of-sequence patch
    assert not patches[n:].any()  # padding
    assert patches.min() >= 0.0 and patches[: n - 1].max() <= 1.0
    assert all(patch.any() for patch in patches[: n - 1])  # ink in every text patch
    # the 1 px margin rows stay blank but for anti-aliasing of strokes that reach the em box's bottom
    # (measured: at most 0.067 in row 15, under 们 and 北)
    assert not patches[: n - 1, 0].any() and patches[: n - 1, 15].max() < 0.1
    mask = batch.attention_mask
    assert mask.shape == (1, cfg.max_patches) and mask.dtype == np.int64
    assert mask[0, :n].all() and not mask[0, n:].any()


def test_line_image_shows_ink_black_on_white() -> None:
    patches = renderer().render("中国")
    image = line_image(patches)
    assert image.size == (16 * len(patches), 16) and image.mode == "L"
    pixels = np.asarray(image)
    assert (pixels[:, -16:] == 0).all()  # the end patch is full ink
    np.testing.assert_array_equal(pixels, np.round((1.0 - as_line(patches)) * 255).astype(np.uint8))


# ----------------------------------------------------------------------------- fast path


@pytest.mark.parametrize("text", [MIXED_LINE, "今天天气很好, the quick brown fox 跳过了懒狗。"])
def test_the_fast_path_draws_what_pillow_draws_for_the_whole_line(text: str) -> None:
    cfg = LineRenderConfig()
    ours = text_ink(renderer(), text)
    theirs = pillow_line(text, *default_font(), width=ours.shape[1], cfg=cfg)
    # measured: mean |difference| 2.4e-6 (one pixel off by 1/255) and 0.0, total ink equal to 1e-5;
    # the same line drawn one pixel to the right differs by 0.196 on the mean, so 0.01 catches any
    # misplaced glyph or pen
    assert mad(ours, theirs) < 0.01
    assert abs(ours.sum() - theirs.sum()) < 0.02 * theirs.sum()


@pytest.mark.parametrize("text", ["汉字和Latin混排，还有кириллица。", "AVAWAV Tyjy ffl"])  # the second: ink overlaps
def test_the_fast_path_reproduces_pillow_exactly_where_neighbours_share_columns(text: str) -> None:
    # FreeType's hinted advances and Pillow's pen are whole pixels: nothing is approximated
    ours = text_ink(renderer(), text)
    np.testing.assert_allclose(ours, pillow_line(text, *default_font(), width=ours.shape[1], cfg=LineRenderConfig()),
                               atol=1e-6)


def test_glyph_blocks_that_share_columns_go_to_different_layers() -> None:
    assert _layers(np.array([0, 10, 20]), np.array([10, 20, 30])) == 1  # touching, not sharing
    assert _layers(np.array([0, 9, 18]), np.array([10, 19, 28])) == 2  # each overlaps the next
    assert _layers(np.array([0, 2, 4, 30]), np.array([12, 14, 16, 40])) == 3  # three deep


# ----------------------------------------------------------------------------- truncation


@pytest.mark.parametrize(
    "text, max_patches, kept",
    [
        ("中国人民中国人民中国人民", 3, "中国"),  # 32 px of text: two 14 px characters fit, a third would end at 42
        ("ab中国人民Hello 世界", 4, "ab中国"),  # 48 px: 'ab' 17 px + 28 px fit, 人 would end at 59
        ("שלום עולם", 3, "שלום"),  # shaped: 'שלום' is 31 px in DejaVu Sans, the space after it passes 32
    ],
)
def test_truncation_counts_the_characters_cut_and_keeps_the_prefix_pixels(text: str, max_patches: int,
                                                                            kept: str) -> None:
    batch = renderer(max_patches=max_patches).render_batch([text])
    assert batch.truncated.tolist() == [len(text) - len(kept)]
    assert batch.lengths.tolist() == [max_patches]
    np.testing.assert_array_equal(batch.patches[0], renderer().render(kept))


def test_a_line_that_fits_exactly_is_not_truncated() -> None:
    batch = renderer(max_patches=3).render_batch(["中国"])  # 28 px in 32
    assert batch.truncated.tolist() == [0] and batch.lengths.tolist() == [3]


# ----------------------------------------------------------------------------- batches


def test_each_line_of_a_batch_is_drawn_as_if_alone() -> None:
    lines = [MIXED_LINE, "שלום עולם 中文", "国", "क्षत्रिय"]  # fast, shaped, short, shaped
    r = renderer()
    batch = r.render_batch(lines)
    for b, text in enumerate(lines):
        alone = r.render_batch([text])
        assert batch.lengths[b] == alone.lengths[0] and batch.truncated[b] == alone.truncated[0]
        np.testing.assert_array_equal(batch.patches[b], alone.patches[0], err_msg=text)


@pytest.mark.parametrize("edge", ["fit", "clip"])
def test_a_renderer_that_remembers_words_draws_what_a_fresh_one_draws(edge: str) -> None:
    # shaped words, their advances and fonts are remembered after the first line; render() draws only the
    # columns a line needs. Neither may change a pixel, a length or a count.
    lines = ["ولد في عام 2024 في القاهرة", "देवदास ने पार्वती से कहा पार्वती", "ที่นี่ น้ำ", MIXED_LINE,
             "في القاهرة ولد", "पार्वती से"]
    seasoned = LineRenderer(LineRenderConfig(edge=edge, fallback_fonts=[THAI_FONT]))
    seasoned.render_batch(lines)
    for text in lines:
        fresh = LineRenderer(LineRenderConfig(edge=edge, fallback_fonts=[THAI_FONT])).render_batch([text])
        again = seasoned.render_batch([text])
        np.testing.assert_array_equal(again.patches, fresh.patches, err_msg=text)
        assert (again.lengths.tolist(), again.clipped, again.missing) == (fresh.lengths.tolist(), fresh.clipped,
                                                                          fresh.missing)
        np.testing.assert_array_equal(seasoned.render(text), fresh.patches[0, : fresh.lengths[0]], err_msg=text)


# ----------------------------------------------------------------------------- cells


@pytest.mark.parametrize("text,right_to_left", [("In the beginning God created", False),
                                                 ("ولد في عام 2024 في القاهرة", True), ("देवदास ने पार्वती", False)])
def test_words_cells_start_every_word_at_a_patch_boundary_in_the_lines_direction(text: str, right_to_left: bool) -> None:
    words, free = renderer(cell="words"), renderer()
    line = words.render(text)
    alone = [free.render(word)[:-1] for word in text.split()]  # each word as running text, its end patch left out
    expected = np.concatenate([*(alone[::-1] if right_to_left else alone), np.ones((1, 16, 16), np.float32)])
    np.testing.assert_array_equal(line, expected)


def test_words_cells_draw_text_without_spaces_as_free_cells_do() -> None:
    np.testing.assert_array_equal(renderer(cell="words").render(HAN_LINE), renderer().render(HAN_LINE))


def test_words_cells_keep_whole_words_and_count_the_characters_of_those_cut() -> None:
    text = "In the beginning God created the heaven"  # In(1) the(2) beginning(5) God(2) ...: 10 text patches
    batch = renderer(cell="words", max_patches=11).render_batch([text, "God"])
    assert batch.lengths.tolist() == [11, 3] and batch.truncated.tolist() == [len("createdtheheaven"), 0]
    assert batch.fonts_used == {"Noto Sans CJK SC": len("InthebeginningGod") + len("God")}
    alone = renderer(cell="words", max_patches=11).render_batch(["God"])
    np.testing.assert_array_equal(batch.patches[1], alone.patches[0])


def test_char_cells_put_one_character_centred_in_each_patch() -> None:
    text = "中a b国x"
    patches = renderer(cell="char").render(text)
    assert patches.shape == (len(text) + 1, 16, 16)
    for ch, patch in zip(text, patches):
        if ch == " ":
            assert not patch.any()
            continue
        columns = patch.sum(axis=0)
        assert columns.sum() > 0, ch
        # measured: ink centres 7.94 to 8.48; a glyph placed at the patch's left edge would be at ~4
        assert abs((columns * (np.arange(16) + 0.5)).sum() / columns.sum() - 8) < 0.75, ch
    assert (patches[-1] == 1.0).all()


@pytest.mark.parametrize("text", ["中a b国x", "国国国", "中国"])
def test_bigram_cells_hold_two_characters_per_patch(text: str) -> None:
    patches = renderer(cell="bigram").render(text)
    assert len(patches) == math.ceil(len(text) / 2) + 1
    assert all(patch.any() for patch in patches[:-1])


def test_bigram_draws_two_han_characters_at_half_size_side_by_side() -> None:
    bigram = renderer(cell="bigram").render("中国")[0]
    free = renderer().render("国")[0]
    assert bigram[:, :8].sum() > 5 and bigram[:, 8:].sum() > 5  # one character in each half

    def outer_quarters(patch: np.ndarray) -> float:
        return float((patch[:4].sum() + patch[12:].sum()) / patch.sum())

    # a 7 px em box centred in the 14 px one leaves rows 0-3 and 12-15 (nearly) blank; measured: 1.3 %
    # of the ink there at half size, 40 % for the same character at full size
    assert not bigram[:4].any() and not bigram[13:].any()
    assert outer_quarters(bigram) < 0.05 and outer_quarters(free) > 0.2


def test_bigram_draws_latin_at_the_lines_size_so_a_wide_letter_overhangs_its_half() -> None:
    # only East Asian wide characters are halved (the module says so): W (12 px) spills into the next half
    patch = renderer(cell="bigram").render("oW")[0]
    free = renderer().render("W")[0]
    assert patch[:, 8:].any() and np.flatnonzero(patch.sum(axis=1)).max() == np.flatnonzero(free.sum(axis=1)).max()


# ----------------------------------------------------------------------------- modes


def test_binary_draw_threshold_is_grey_thresholded() -> None:
    grey = renderer().render(MIXED_LINE)
    for threshold in (0.2, 0.5, 0.8):
        binary = renderer(mode="binary", binary_draw="threshold", binary_threshold=threshold).render(MIXED_LINE)
        assert binary.dtype == np.float32 and set(np.unique(binary).tolist()) == {0.0, 1.0}
        np.testing.assert_array_equal(binary, (grey > threshold).astype(np.float32))
    low = renderer(mode="binary", binary_draw="threshold", binary_threshold=0.2).render(MIXED_LINE)
    high = renderer(mode="binary", binary_draw="threshold", binary_threshold=0.8).render(MIXED_LINE)
    assert low.sum() > high.sum()  # the threshold is used


LONG_HAN_LINE = "中华人民共和国成立于一九四九年，首都北京是全国的政治文化中心。"


@pytest.mark.parametrize("cell", ["free", "char"])
def test_binary_lines_at_8px_keep_the_strokes_that_a_threshold_loses(cell: str) -> None:
    # PIXAR's setting: 8 px binary. A Han stroke is under half a pixel wide there, so cutting anti-aliased grey
    # at 0.5 loses most of it; drawing without anti-aliasing inks every pixel whose centre the outline covers
    kw = {"patch": 8, "cell": cell, "max_patches": 64}
    grey = renderer(**kw).render(LONG_HAN_LINE)[:-1]  # the end patch aside
    aliased = renderer(mode="binary", binary_draw="aliased", **kw).render(LONG_HAN_LINE)[:-1]
    threshold = renderer(mode="binary", binary_draw="threshold", **kw).render(LONG_HAN_LINE)[:-1]
    assert set(np.unique(aliased).tolist()) == {0.0, 1.0}
    assert aliased.sum() > 2.5 * threshold.sum() and aliased.sum() > grey.sum()
    # every character keeps ink (a threshold blanks some entirely in char cells)
    if cell == "char":
        assert (aliased.reshape(len(aliased), -1).sum(1) > 0).all()


def test_binary_8px_characters_read_back_as_themselves_far_more_often_drawn_aliased(tiny_corpus) -> None:
    import torch

    from hotstart.analysis.readback import GlyphReader

    ids = torch.as_tensor(tiny_corpus.sequences(tiny_corpus.val_index)).flatten()
    ids = ids[ids > 2]  # characters, the specials aside
    share = {}
    for draw in ("aliased", "threshold"):
        reader = GlyphReader(LineRenderConfig(patch=8, mode="binary", cell="char", binary_draw=draw), tiny_corpus.vocab)
        share[draw] = (reader.drawn_as(ids) == ids).float().mean().item()  # drawn unlike any more frequent character
    # measured here: 94.0% against 77.6% (on the built-in corpus's 256 first validation sequences, 98.6 against 84.1)
    assert share["aliased"] >= 0.9 and share["aliased"] > share["threshold"] + 0.1, share


def test_rgb_mode_is_three_equal_channels_of_grey() -> None:
    grey = renderer().render_batch([MIXED_LINE])
    rgb = renderer(mode="rgb").render_batch([MIXED_LINE])
    assert rgb.patches.shape == (*grey.patches.shape, 3) and rgb.patches.dtype == np.float32
    for channel in range(3):
        np.testing.assert_array_equal(rgb.patches[..., channel], grey.patches)
    np.testing.assert_array_equal(rgb.lengths, grey.lengths)


# ----------------------------------------------------------------------------- shaping


def test_hebrew_is_drawn_right_to_left() -> None:
    cfg, word = LineRenderConfig(), "שלום"
    ours = text_ink(renderer(), word)
    dejavu = script_font("DejaVuSans")
    reversed_order = pillow_line(word[::-1], dejavu, 0, ours.shape[1], cfg)
    reading_order = pillow_line(word, dejavu, 0, ours.shape[1], cfg)
    # measured: 0.0 against the reversed string, 0.205 against the letters left to right
    assert mad(ours, reversed_order) < 0.02
    assert mad(ours, reading_order) > 0.1


@pytest.mark.parametrize("word", ["क्ष", "क्षत्रिय"])
def test_devanagari_conjuncts_are_shaped_narrower_than_their_letters(word: str) -> None:
    cfg = LineRenderConfig()
    ours = text_ink(renderer(), word)
    width = 4 * cfg.patch * len(word)
    unshaped = pillow_line(word, script_font("Shobhika"), 0, width, cfg)
    # measured: mean |difference| 0.208 (क्ष) and 0.201; ink ends at column 12 vs 22, and 35 vs 51
    assert mad(ours, unshaped[:, : ours.shape[1]]) > 0.1
    ours_end, unshaped_end = (np.flatnonzero(ink.any(axis=0))[-1] for ink in (ours, unshaped))
    assert ours_end < 0.8 * unshaped_end


def test_arabic_letters_are_joined() -> None:
    cfg, word = LineRenderConfig(), "مرحبا"
    ours = text_ink(renderer(), word)
    dejavu = script_font("DejaVuSans")
    width = 4 * cfg.patch * len(word)
    # isolated forms in either order differ from the joined word (measured: 0.166 and 0.138)
    for unshaped in (pillow_line(word, dejavu, 0, width, cfg), pillow_line(word[::-1], dejavu, 0, width, cfg)):
        assert mad(ours, unshaped[:, : ours.shape[1]]) > 0.08
        assert np.flatnonzero(ours.any(axis=0))[-1] < np.flatnonzero(unshaped.any(axis=0))[-1]


# ----------------------------------------------------------------------------- font chain and missing


def test_fonts_used_counts_characters_per_font_of_the_chain() -> None:
    batch = renderer().render_batch(["中文 שלום", "क्ष"])
    assert batch.fonts_used == {"Noto Sans CJK SC": 2, "DejaVu Sans": 4, "Shobhika Regular": 3}
    assert batch.missing == {}


def test_a_character_in_no_font_is_counted_and_leaves_half_an_em_blank() -> None:
    r = renderer()
    batch = r.render_batch([f"中{HIEROGLYPH}国"])
    assert batch.missing == {HIEROGLYPH: 1} and batch.fonts_used == {"Noto Sans CJK SC": 2}
    ink = as_line(batch.patches[0, : batch.lengths[0] - 1])
    assert not ink[:, 14:21].any()  # 中 ends at 14 px; the missing character takes 7 px (half an em)
    assert ink.sum() == pytest.approx(text_ink(r, "中").sum() + text_ink(r, "国").sum(), rel=1e-5)
    alone = r.render_batch([HIEROGLYPH])
    assert alone.lengths.tolist() == [2] and not alone.patches[0, 0].any()


def test_a_character_in_no_font_raises_under_the_error_policy() -> None:
    with pytest.raises(HotStartError, match=r"U\+13000.*--missing blank"):
        renderer(missing="error").render_batch([f"中{HIEROGLYPH}国"])
    assert renderer(missing="error").render("中国").any()


def test_fonts_used_and_missing_leave_out_characters_cut_by_truncation() -> None:
    batch = renderer(max_patches=3).render_batch(["中国人民中国人民中国人民", "שלום עולם", f"中{HIEROGLYPH}国人民中国人民"])
    assert batch.truncated.tolist() == [10, 5, 7]  # 32 px of text: 中国, שלום, 中 + half an em (国 ends at 35)
    assert batch.fonts_used == {"Noto Sans CJK SC": 2 + 1, "DejaVu Sans": 4}
    assert batch.missing == {HIEROGLYPH: 1}
    assert renderer(max_patches=2).render_batch([f"中国人民{HIEROGLYPH}"]).missing == {}


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "lines, message",
    [
        ([""], "line 0 has nothing to draw"),
        (["   "], "line 0 has nothing to draw"),
        (["中国", "\u200d"], "line 1 has nothing to draw"),  # a joiner alone draws nothing
        (["中国\n人民"], "line 0 contains a line break"),
        (["中国\r人民"], "line 0 contains a line break"),
    ],
)
def test_a_line_that_cannot_be_drawn_is_refused(lines: list[str], message: str) -> None:
    with pytest.raises(HotStartError, match=message):
        renderer().render_batch(lines)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"patch": 3}, "patch=3 .*an integer from 4 to 64"),
        ({"mode": "foo"}, r"mode='foo' .*grey \| binary \| rgb"),
        ({"cell": "foo"}, r"cell='foo' .*free \| char \| bigram"),
        ({"max_patches": 1}, "max_patches=1 .*from 2 .*to 16,384"),
        ({"margin": 0.5}, "margin=0.5 .*0 <= margin < 0.5"),
        ({"missing": "fallback"}, r"missing='fallback' .*blank \| error"),
        ({"binary_threshold": 1.5}, "binary_threshold=1.5 .*between 0 and 1"),
        ({"patch": 4, "margin": 0.4}, "leaves no room for text in a 4 px line"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kw: dict, message: str) -> None:
    with pytest.raises(HotStartError, match=message):
        LineRenderConfig(**kw).validate()
    with pytest.raises(HotStartError, match=message):
        LineRenderer(LineRenderConfig(**kw))


# ----------------------------------------------------------------------------- settings


def test_settings_record_the_geometry_and_every_font_with_its_hash() -> None:
    r = renderer(patch=8, mode="binary", cell="bigram", max_patches=64, margin=0.125)
    s = r.settings()
    assert (s["patch"], s["mode"], s["cell"], s["max_patches"], s["margin"]) == (8, "binary", "bigram", 64, 0.125)
    assert s["missing"] == "blank" and s["binary_threshold"] == 0.5 and s["script_fonts"] is True
    assert s["shaping"].startswith("raqm ") and s["freetype"] and s["pillow"]
    noto_path, sc_face = default_font()
    assert [(f["path"], f["face"]) for f in s["fonts"]] == [(os.path.abspath(noto_path), sc_face)] + [
        (os.path.abspath(p), 0) for p in script_fonts()]
    assert [f["name"] for f in s["fonts"]] == r.fonts
    assert r.fonts[:2] == ["Noto Sans CJK SC", "DejaVu Sans"] and "Shobhika Regular" in r.fonts
    for font in s["fonts"]:
        assert font["sha256"] == hashlib.sha256(Path(font["path"]).read_bytes()).hexdigest(), font["name"]


def test_fallback_fonts_come_before_the_script_fonts_in_the_chain() -> None:
    dejavu = script_font("DejaVuSans")
    r = renderer(fallback_fonts=(dejavu,), script_fonts=False)
    assert r.fonts == ["Noto Sans CJK SC", "DejaVu Sans"]
    assert r.render_batch(["שלום"]).fonts_used == {"DejaVu Sans": 4}
    assert renderer(script_fonts=False).render_batch(["שלום"]).missing == {ch: 1 for ch in "שלום"}
    # a fallback that is also an installed script font is in the chain once, where the fallbacks go
    with_scripts = LineRenderer(LineRenderConfig(fallback_fonts=[dejavu]))
    assert with_scripts.fonts[:2] == ["Noto Sans CJK SC", "DejaVu Sans"]
    assert len(with_scripts.fonts) == len(set(with_scripts.fonts))


def test_font_sets_the_primary_font_of_the_chain() -> None:
    r = LineRenderer(LineRenderConfig(font=script_font("DejaVuSans"), script_fonts=False))
    assert r.fonts == ["DejaVu Sans"] and r.render_batch(["Abc"]).fonts_used == {"DejaVu Sans": 3}


# ----------------------------------------------------------------------------- command line


def test_render_text_writes_a_zoomed_png_of_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.png"
    assert main(["render-text", "--text", HAN_LINE, "--zoom", "2", "--out", str(out)]) == 0
    n = int(renderer().render_batch([HAN_LINE]).lengths[0])
    with Image.open(out) as image:
        assert image.size == (2 * 16 * n, 2 * 16)
        pixels = np.asarray(image.convert("L"))
    expected = np.asarray(line_image(renderer().render(HAN_LINE)))
    np.testing.assert_array_equal(pixels[::2, ::2], expected)  # nearest-neighbour zoom of the line
    captured = capsys.readouterr()
    assert f"{n - 1} text patches" in captured.out and captured.err == ""


def test_render_text_warns_how_many_characters_were_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "中国人民中国人民中国人民"
    assert main(["render-text", "--text", text, "--max-patches", "3", "--out", str(tmp_path / "x.png")]) == 0
    err = capsys.readouterr().err
    assert "warning: 10 of 12 characters cut" in err and "--max-patches 3" in err
    with Image.open(tmp_path / "x.png") as image:
        assert image.size == (3 * 16, 16)


def test_render_text_with_empty_text_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render-text", "--text", "", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --text has nothing to draw") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_ukrainian_letters_the_default_font_lacks_come_from_dejavu_not_from_a_devanagari_font() -> None:
    # Noto Sans CJK SC has Russian's Cyrillic but not і ї є ґ; Shobhika has its own Cyrillic, which
    # would put a Devanagari font's letters inside Ukrainian words
    used = renderer().render_batch(["Привіт, їжак і ґанок"]).fonts_used
    assert used == {"Noto Sans CJK SC": 13, "DejaVu Sans": 4}


# ----------------------------------------------------------------------------- bidi across fonts

DEJAVU = Path(__import__("matplotlib").__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
BIDI_LINES = ["abc שלום עולם 123 def", "ولد في عام 2024 في القاهرة", "مرحبا. كيف حالك", "שלום (עולם) 42"]


@pytest.mark.parametrize("text", BIDI_LINES)
def test_a_bidi_line_in_one_font_is_raqms_own_drawing_of_the_whole_line(text: str) -> None:
    # runs of one level, each drawn in its own direction in visual order, give exactly what raqm (FriBiDi)
    # draws for the whole line at once, mirrored brackets included
    r = renderer(font=str(DEJAVU), max_patches=64)
    ours = np.concatenate(list(r.render(text)[:-1]), axis=1)  # (P, n * P)
    font = load_face(str(DEJAVU), 0, r.cfg.em_px, shaped=True, em_box=False).pil
    canvas = Image.new("L", (ours.shape[1] + 4 * r.cfg.patch, r.cfg.patch))
    ImageDraw.Draw(canvas).text((0, r._baseline), text, fill=255, font=font, anchor="ls")
    np.testing.assert_array_equal(ours, np.asarray(canvas, dtype=np.float32)[:, : ours.shape[1]] / 255.0)


def test_bidi_order_is_resolved_over_the_whole_line_before_it_is_split_by_font() -> None:
    from hotstart.render.line import bidi_levels, visual_runs

    r = renderer(max_patches=64)  # the default chain: Latin, digits and ASCII punctuation from the CJK font
    def order(text: str) -> list[str]:
        levels, base = bidi_levels(text)
        return [run for _, _, run in visual_runs(text, r._char_faces(text), levels, base)]
    # left to right on the page; a right-to-left run is listed in logical order and drawn right to left
    assert order("abc שלום עולם 123 def") == ["abc ", "123", "שלום עולם ", " def"]  # 123 left of the Hebrew
    assert order("ولد في عام 2024 في القاهرة") == ["في القاهرة", " ", "2024", "ولد في عام "]
    assert order("مرحبا. كيف حالك") == ["كيف حالك", ". ", "مرحبا"]  # the first clause on the right
    assert order("我们在北京") == ["我们在北京"] and bidi_levels("abc")[0] == [0, 0, 0]


def test_a_bidi_line_too_long_is_cut_at_a_logical_prefix() -> None:
    text = "ولد في عام 2024 في القاهرة " * 6
    batch = renderer(max_patches=12).render_batch([text])
    kept = len(text) - batch.truncated[0]
    assert 0 < kept < len(text) and batch.lengths[0] <= 12
    whole = renderer(max_patches=64).render(text[:kept])
    np.testing.assert_array_equal(batch.patches[0, : batch.lengths[0]], whole)  # the same as drawing the prefix


@pytest.mark.parametrize(("text", "left", "right"), [("ولد في عام 2024 في القاهرة", "في القاهرة", "ولد في عام"),
                                                      ("مرحبا. كيف حالك", "كيف حالك", "مرحبا")])
def test_a_right_to_left_line_mixing_fonts_puts_its_clauses_where_one_font_does(text: str, left: str, right: str) -> None:
    # digits and ASCII punctuation come from the CJK font, Arabic from DejaVu Sans: the Arabic words at the two
    # ends must stand where DejaVu Sans alone puts them (the last words leftmost, the first rightmost). The
    # fonts' baselines and a digit's fractional advance differ, so the ink is compared column by column (ink
    # per column), allowing a shift of one pixel
    profile = lambda cfg: np.concatenate(list(renderer(max_patches=64, **cfg).render(text)[:-1]), axis=1).sum(axis=0)
    mixed, alone = profile({}), profile({"font": str(DEJAVU)})
    font = load_face(str(DEJAVU), 0, renderer().cfg.em_px, shaped=True, em_box=False).pil
    end = lambda p: int(np.flatnonzero(p)[-1]) + 1  # the end of the first word's ink, rightmost

    def alike(a: np.ndarray, b: np.ndarray) -> float:
        return max(float(np.corrcoef(a[max(s, 0) : len(a) + min(s, 0)], b[max(-s, 0) : len(b) + min(-s, 0)])[0, 1])
                   for s in (-1, 0, 1))
    w_left, w_right = int(font.getlength(left, direction="rtl")), int(font.getlength(right, direction="rtl"))
    assert alike(mixed[:w_left], alone[:w_left]) > 0.95
    assert alike(mixed[end(mixed) - w_right : end(mixed)], alone[end(alone) - w_right : end(alone)]) > 0.95
    # the test can tell: the clauses swapped (as drawn before bidi was resolved over the whole line) do not match
    assert alike(mixed[:w_right], alone[end(alone) - w_right : end(alone)]) < 0.5


@pytest.mark.parametrize("text", ["a\u2066b\u2069c", "שלום\u2069 abc", "\u2067مرحبا\u2069 123"])
def test_isolate_characters_are_drawn_as_neutrals_without_an_error(text: str) -> None:
    # the reference bidi algorithm predates isolates (LRI, RLI, FSI, PDI); they read as neutrals
    batch = renderer(max_patches=64).render_batch([text])
    assert batch.lengths[0] > 1 and batch.patches[0, : batch.lengths[0] - 1].any()


def test_a_saved_binary_config_without_binary_draw_thresholds_and_a_new_run_draws_aliased() -> None:
    from hotstart.cli import _run_config, build_parser
    from hotstart.config import from_dict

    assert from_dict(LineRenderConfig, {"mode": "binary", "patch": 8}).binary_draw == "threshold"  # as it trained
    new = _run_config(build_parser().parse_args(["train", "--data", "D", "--out", "R", "--objective", "pixar"]))
    assert new.model.line.binary_draw == "aliased"


# ----------------------------------------------------------------------------- every script, kept inside the line

THAI_FONT = str(Path(__file__).parent / "fonts" / "NotoSansThai-Regular.ttf")  # no default font covers Thai
# one line per script, and the visual order of its words, left to right (a right-to-left line's words reversed)
SCRIPT_LINES = {
    "chinese": ("山水 之间 有人家", ["山水", "之间", "有人家"]),
    "english": ("The quick brown fox jumps", ["The", "quick", "brown", "fox", "jumps"]),
    "cyrillic": ("Съешь же ещё этих булок", ["Съешь", "же", "ещё", "этих", "булок"]),
    "hindi": ("नमस्ते दुनिया सुंदर है", ["नमस्ते", "दुनिया", "सुंदर", "है"]),
    "arabic": ("ولد في عام القاهرة", ["القاهرة", "عام", "في", "ولد"]),
    "mixed bidi": ("abc שלום עולם 123 def", ["abc", "123", "עולם", "שלום", "def"]),  # 123 joins the Hebrew (N1)
    "thai": ("ที่นี่ น้ำ สวัสดีครับ", ["ที่นี่", "น้ำ", "สวัสดีครับ"]),
}


def script_renderer(**kw: object) -> LineRenderer:
    return renderer(fallback_fonts=(THAI_FONT,), max_patches=64, **kw)


def word_positions(r: LineRenderer, text: str, words: list[str]) -> list[int]:
    """Where each word, drawn alone, matches the line best (first column): a template reader for any script."""
    line = text_ink(r, text)
    found = []
    for word in words:
        ink = text_ink(r, word)
        inked = np.flatnonzero(ink.any(axis=0))
        ink = ink[:, inked[0] : inked[-1] + 1]
        errors = [float(((line[:, x : x + ink.shape[1]] - ink) ** 2).sum()) for x in range(line.shape[1] - ink.shape[1] + 1)]
        # exact for words drawn alike; a Latin word inside a shaped line sits at a fractional pen (0.21 here)
        assert min(errors) < 0.3 * float((ink**2).sum()), f"{word!r} is not drawn in the line as it is alone"
        found.append(int(np.argmin(errors)))
    return found


def tall_loss(text: str, path: str, cfg: LineRenderConfig) -> float:
    """Share of the ink of `text` that Pillow, drawing it whole (raqm) on the renderer's baseline on a canvas three
    lines tall, puts outside the line's rows: what a renderer that clips loses."""
    from PIL import features

    p = cfg.patch
    baseline = cfg.margin_px + load_face(*default_font(), cfg.em_px, em_box=False).ascender_px
    font = load_face(path, 0, cfg.em_px, shaped=features.check("raqm"), em_box=False).pil
    canvas = Image.new("L", (40 * p, 3 * p))
    ImageDraw.Draw(canvas).text((p, p + baseline), text, fill=255, font=font, anchor="ls")
    ink = np.asarray(canvas, dtype=np.float64)
    return 1.0 - ink[p : 2 * p].sum() / ink.sum()


@pytest.mark.parametrize("script", SCRIPT_LINES)
def test_every_script_reads_back_in_order_with_no_ink_lost_at_the_edge(script: str) -> None:
    text, visual = SCRIPT_LINES[script]
    r = script_renderer(edge="fit")
    batch = r.render_batch([text])
    assert batch.clipped == {} and not batch.missing and not batch.truncated[0]
    x = word_positions(r, text, visual)
    assert x == sorted(x) and len(set(x)) == len(x), f"words out of order: {dict(zip(visual, x))}"


@pytest.mark.parametrize("script", SCRIPT_LINES)
def test_every_script_in_char_cells_reads_back_as_itself_by_the_glyph_reader(script: str) -> None:
    import torch

    from hotstart.analysis.readback import GlyphReader
    from hotstart.data.prepared import Vocab

    text = SCRIPT_LINES[script][0]
    chars = sorted(set(text))
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *chars], [0, 0, 0, *[1] * len(chars)])
    cfg = LineRenderConfig(cell="char", fallback_fonts=[THAI_FONT], edge="fit", max_patches=64)
    reader = GlyphReader(cfg, vocab)
    batch = LineRenderer(cfg).render_batch([text])
    assert batch.clipped == {}
    assert reader.text(reader.read(torch.from_numpy(batch.patches[0, : batch.lengths[0]])).tolist()) == text


@pytest.mark.parametrize("script", SCRIPT_LINES)
@pytest.mark.parametrize("patch", [16, 8])
def test_binary_lines_of_every_script_keep_their_ink(script: str, patch: int) -> None:
    text = SCRIPT_LINES[script][0]
    grey = script_renderer(patch=patch, edge="fit").render_batch([text])
    binary = script_renderer(patch=patch, mode="binary", binary_draw="aliased", edge="fit").render_batch([text])
    n = grey.lengths[0] - 1
    assert binary.lengths[0] == grey.lengths[0] and binary.clipped == {}
    # drawn aliased, a binary line has at least the grey line's ink (measured: 0.93x to 1.87x over these lines;
    # thresholding the grey keeps 0.42x of the Chinese line at 8 px)
    assert binary.patches[0, :n].sum() >= 0.85 * grey.patches[0, :n].sum()


@pytest.mark.parametrize(("text", "font", "lost"), [
    ("ÅÉÖ gjpq", None, {"Å", "É", "Ö", "g", "j", "p", "q"}),  # the CJK font's accents and descenders
    ("ที่นี่ น้ำ", THAI_FONT, {"ที่นี่ น้ำ"}),  # stacked tone marks (a shaped run is counted whole)
    ("नमस्ते दुनिया", "Shobhika", {"नमस्ते दुनिया"}),
])
def test_clip_counts_the_ink_a_tall_canvas_shows_past_the_edge_and_fit_keeps_it(text: str, font: str | None,
                                                                                 lost: set[str]) -> None:
    path = default_font()[0] if font is None else font if font.endswith(".ttf") else script_font(font)
    cfg = LineRenderConfig(fallback_fonts=[THAI_FONT], max_patches=64)
    if font is not None:
        assert tall_loss(text, path, cfg) > 0.01  # measured independently: 1.5% (Thai), 5.9% (Devanagari)
    clipped = script_renderer(edge="clip").render_batch([text]).clipped
    assert set(clipped) == lost
    assert script_renderer(edge="fit").render_batch([text]).clipped == {}


def test_fit_moves_a_glyph_that_would_leave_the_line_by_whole_rows_and_leaves_the_rest_alone() -> None:
    clip, fit = script_renderer(edge="clip"), script_renderer(edge="fit")
    assert np.array_equal(text_ink(clip, HAN_LINE), text_ink(fit, HAN_LINE))  # Han fits: not a pixel moves
    g_clip, g_fit = text_ink(clip, "g"), text_ink(fit, "g")
    assert g_fit.sum() > g_clip.sum()  # the descender's lost rows are back
    shift = next(s for s in range(1, 4) if np.array_equal(g_fit[: 16 - s], g_clip[s:]))  # the clip drawing moved up
    assert g_fit[16 - shift :].any()


def test_a_saved_line_config_without_edge_clips_and_a_new_run_fits() -> None:
    from hotstart.cli import _run_config, build_parser
    from hotstart.config import from_dict

    assert from_dict(LineRenderConfig, {"patch": 16}).edge == "clip"  # as it trained
    new = _run_config(build_parser().parse_args(["train", "--data", "D", "--out", "R", "--objective", "mae"]))
    assert new.model.line.edge == "fit"


def test_render_text_warns_when_clipped_ink_is_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["render-text", "--text", "Ångström", "--edge", "clip", "--out", str(tmp_path / "l.png")])
    assert "lost ink at the line's top or bottom edge: Å, g" in capsys.readouterr().err
    main(["render-text", "--text", "Ångström", "--out", str(tmp_path / "l.png")])
    assert "lost ink" not in capsys.readouterr().err


class _Lines(__import__("torch").utils.data.Dataset):
    """Each item one line's patches, drawn by a renderer built in the main process before the fork."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.renderer = texts, LineRenderer(LineRenderConfig(max_patches=48, fallback_fonts=[THAI_FONT]))
        self.renderer.render_batch(texts[:2])  # its font caches filled before the workers fork

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.renderer.render(self.texts[i])


@pytest.mark.filterwarnings("ignore:This DataLoader will create 4 worker processes")  # 4 asked of 2 cores, on purpose
def test_lines_rendered_in_four_forked_data_loader_workers_are_the_main_process_lines() -> None:
    # one of the field's renderers deadlocked in forked workers (fontconfig after fork); ours reads fonts with
    # FreeType through Pillow and fontTools, no fontconfig: the same pixels in every worker, and no hang
    import multiprocessing

    import torch

    texts = [text for text, _ in SCRIPT_LINES.values()] * 3 + [HAN_LINE, MIXED_LINE]
    data = _Lines(texts)
    expected = [data[i] for i in range(len(texts))]
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=4, timeout=120,
                                         multiprocessing_context=multiprocessing.get_context("fork"))
    got = list(loader)
    assert len(got) == len(texts)
    for mine, theirs in zip(expected, got):
        assert np.array_equal(mine, theirs.numpy())
