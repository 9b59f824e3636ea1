"""Tests for hotstart.render.glyph: geometry, ink mass, missing glyphs, specials, cache and preview grid.

Fonts used, all from pip packages the project depends on (so they exist on every CI machine):
- Noto Sans CJK SC, face of NotoSansCJK-Regular.ttc from `noto-cjk-sans-otc` (the default font);
- DejaVu Sans, matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf from `matplotlib`: it has Armenian
  letters that Noto Sans CJK lacks (fallback for Noto) and lacks CJK (primary with Noto as fallback).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from fontTools.ttLib import TTFont
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont, features

import hotstart.render.glyph
from hotstart.errors import HotStartError
from hotstart.render.fonts import default_font, font_info
from hotstart.render.glyph import GlyphRenderer, RenderConfig, render_grid

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
PUA = "\ue000"  # Private Use Area: no public font maps it
ARMENIAN = "\u0531"  # 'Ա': in DejaVu Sans, not in Noto Sans CJK


@functools.cache
def renderer(**kw: object) -> GlyphRenderer:
    """Renderers are reused across tests (and hypothesis examples); building one loads a cmap.

    List fields are passed as tuples, which functools.cache can hash.
    """
    return GlyphRenderer(RenderConfig(**{k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}))


def cmap(path: str, face: int) -> set[int]:
    with TTFont(path, fontNumber=face, lazy=True) as tt:
        return set(tt.getBestCmap())


def ink_rows_cols(glyph: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(glyph.any(axis=1))[0], np.nonzero(glyph.any(axis=0))[0]


# ----------------------------------------------------------------------------- geometry


def test_geometry_follows_margin_and_crop_rounding() -> None:
    assert (RenderConfig(res=8).margin_px, RenderConfig(res=8).ink_px) == (1, 6)
    assert RenderConfig(res=8, crop=0.8).rows == 5
    assert RenderConfig(res=8, crop=0.5).rows == 3
    assert RenderConfig(res=16, margin=0.25).margin_px == 4
    assert RenderConfig(res=4, crop=0.01).rows == 1  # at least one row survives


def test_full_block_fills_exactly_the_ink_box_at_8px() -> None:
    glyph = renderer(res=8).render("█")
    rows, cols = ink_rows_cols(glyph)
    assert list(rows) == list(range(1, 7)) and list(cols) == list(range(1, 7))
    assert glyph[1:7, 1:7].min() > 0.98  # the em box maps onto the ink box, edge to edge


@pytest.mark.parametrize("crop, kept_rows", [(1.0, 6), (0.8, 5), (0.5, 3)])
def test_crop_keeps_the_top_rows_of_the_ink_box(crop: float, kept_rows: int) -> None:
    glyph = renderer(res=8, crop=crop).render("█")
    rows, _ = ink_rows_cols(glyph)
    assert list(rows) == list(range(1, 1 + kept_rows))
    assert not glyph[1 + kept_rows :].any()


@pytest.mark.parametrize("margin, first, last", [(0.0, 0, 16), (0.25, 4, 12)])
def test_margin_leaves_a_blank_border_at_16px(margin: float, first: int, last: int) -> None:
    glyph = renderer(res=16, margin=margin).render("█")
    rows, cols = ink_rows_cols(glyph)
    assert list(rows) == list(range(first, last)) and list(cols) == list(range(first, last))


@pytest.mark.parametrize("res", [4, 8, 20, 96])
def test_every_resolution_gives_square_float32_coverage(res: int) -> None:
    glyph = renderer(res=res).render("国")
    assert glyph.shape == (res, res) and glyph.dtype == np.float32
    assert glyph.min() >= 0.0 and glyph.max() <= 1.0 and glyph.sum() > 0
    m = RenderConfig(res=res).margin_px
    rows, cols = ink_rows_cols(glyph)
    assert rows.min() >= m and rows.max() < res - m and cols.min() >= m and cols.max() < res - m


def test_space_is_blank_and_not_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = renderer(res=8)
    assert r.has_glyph(" ") and not r.render(" ").any()
    bank = r.render_bank([" ", "国"], cache_dir=tmp_path, progress=False)
    assert bank.missing == [] and "warning" not in capsys.readouterr().err


def test_low_resolution_preserves_ink_mass() -> None:
    # an 8x8 thumbnail should hold the same ink as a 64x64 one averaged over 8x8 blocks; the only
    # differences are FreeType's anti-aliasing at 128 vs 256 px (measured: <0.003 on the mean, <0.06
    # per pixel over 300 CJK characters), so 0.02 / 0.15 leave a wide margin and still catch any
    # point-sampling or misplaced glyph (those change the mean by 0.05 or more)
    small, large = renderer(res=8, margin=0.0), renderer(res=64, margin=0.0)
    for ch in "国我的永鬱。一":
        pooled = large.render(ch).reshape(8, 8, 8, 8).mean(axis=(1, 3))
        assert abs(small.render(ch).mean() - pooled.mean()) < 0.02
        assert np.abs(small.render(ch) - pooled).max() < 0.15


@pytest.mark.parametrize("ch", ["|", "I", "l", ":"])
def test_a_narrow_glyph_is_centred_horizontally_in_the_ink_box(ch: str) -> None:
    # these glyphs are symmetric and about a quarter of an em wide, so their ink is centred only if
    # their advance is; a full-width CJK glyph (even 丨) fills the em box and would not tell
    glyph = renderer(res=32, margin=0.0).render(ch)
    columns = glyph.sum(axis=0)
    assert abs((columns * (np.arange(32) + 0.5)).sum() / columns.sum() - 16) < 0.5


def test_a_control_character_draws_no_ink_even_where_the_font_maps_it(tmp_path: Path) -> None:
    font = TTFont(DEJAVU)  # DejaVu Sans with BEL (U+0007) mapped to the full block's glyph
    for table in font["cmap"].tables:
        if table.isUnicode():
            table.cmap[0x07] = table.cmap[ord("█")]
    font.save(tmp_path / "bell.ttf")
    r = GlyphRenderer(RenderConfig(font=str(tmp_path / "bell.ttf")))
    assert r.has_glyph("\x07") and r.render("█").any()
    assert not r.render("\x07").any()


# ----------------------------------------------------------------------------- fonts


def test_default_font_is_the_sc_face_found_by_name() -> None:
    path, face = default_font()
    info = font_info(path, face)
    assert info.name == "Noto Sans CJK SC" and renderer().font == info


def test_font_info_hashes_the_file() -> None:
    info = font_info(DEJAVU, 0)
    assert info.name == "DejaVu Sans"
    assert info.sha256 == hashlib.sha256(Path(DEJAVU).read_bytes()).hexdigest()


def test_unknown_font_path_is_reported(tmp_path: Path) -> None:
    with pytest.raises(HotStartError, match="does not exist"):
        GlyphRenderer(RenderConfig(font=str(tmp_path / "nope.ttf")))


def test_non_font_file_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "fake.ttf"
    fake.write_text("not a font at all")
    with pytest.raises(HotStartError, match="not a TrueType/OpenType font"):
        GlyphRenderer(RenderConfig(font=str(fake)))


def faces_in(path: str) -> int:
    """How many faces a font file holds, read from its header: a collection ("ttcf") says so at
    bytes 8-11, any other font file is one face."""
    with open(path, "rb") as f:
        header = f.read(12)
    return int.from_bytes(header[8:12], "big") if header[:4] == b"ttcf" else 1


@pytest.mark.parametrize("font", [None, DEJAVU])  # the default collection, a single-face file
def test_face_out_of_range_names_the_face_count(font: str | None) -> None:
    count = faces_in(font or default_font()[0])  # whatever the installed version of the font holds
    message = f"has {count} face(s), so face {count} does not exist; use a face from 0 to {count - 1}"
    with pytest.raises(HotStartError, match=re.escape(message)):
        GlyphRenderer(RenderConfig(font=font, face=count))
    GlyphRenderer(RenderConfig(font=font, face=count - 1))  # the last face is there


def test_settings_record_everything_that_determines_the_pixels() -> None:
    r = renderer(res=8, missing="fallback", fallback_fonts=(DEJAVU,))
    s = r.settings()
    assert set(s) == {"res", "margin", "crop", "keep", "centre_share", "font_name", "font_path", "face", "font_sha256",
                      "missing", "fallback_fonts"}
    assert (s["res"], s["margin"], s["crop"], s["missing"]) == (8, 0.1, 1.0, "fallback")
    assert (s["font_name"], s["font_path"], s["face"]) == ("Noto Sans CJK SC", *default_font())
    assert s["font_sha256"] == r.font.sha256 and [f["name"] for f in s["fallback_fonts"]] == ["DejaVu Sans"]


# ----------------------------------------------------------------------------- missing glyphs


def test_chosen_characters_have_the_assumed_font_coverage() -> None:
    noto = cmap(*default_font())
    dejavu = cmap(DEJAVU, 0)
    assert ord(PUA) not in noto and ord(PUA) not in dejavu
    assert ord(ARMENIAN) not in noto and ord(ARMENIAN) in dejavu
    assert ord("国") in noto and ord("国") not in dejavu


def test_missing_character_is_blank_counted_and_warned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = renderer(missing="blank")
    assert not r.has_glyph(PUA) and not r.render(PUA).any()
    bank = r.render_bank(["国", PUA, ARMENIAN], cache_dir=tmp_path, progress=False)
    assert bank.missing == [PUA, ARMENIAN] and bank.fallback_used == {}
    assert not bank.glyphs[1:].any() and bank.glyphs[0].any()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 of 3" in err and "U+E000" in err and "U+0531" in err
    assert "Noto Sans CJK SC" in err and "missing=blank" in err


def test_missing_character_raises_under_error_policy(tmp_path: Path) -> None:
    r = renderer(missing="error")
    with pytest.raises(HotStartError, match="U\\+E000.*--missing blank.*--fallback-font"):
        r.render(PUA)
    with pytest.raises(HotStartError, match="^2 character"):
        r.render_bank(["国", PUA, ARMENIAN], cache_dir=tmp_path, progress=False)
    assert r.render("国").any()


def test_a_missing_character_under_the_blank_policy_is_a_float32_blank() -> None:
    glyph = renderer(missing="blank").render(PUA)
    assert glyph.dtype == np.float32 and glyph.shape == (8, 8) and not glyph.any()


@pytest.mark.parametrize("n, more", [(10, ""), (11, " and 1 more")])
def test_missing_glyph_error_lists_ten_characters_then_counts_the_rest(n: int, more: str, tmp_path: Path) -> None:
    chars = [chr(0xE000 + i) for i in range(n)]
    with pytest.raises(HotStartError) as raised:
        renderer(missing="error").render_bank(chars, cache_dir=tmp_path, progress=False)
    assert f"U+E008, U+E009{more}; use --missing blank" in str(raised.value)  # unprintable: code points only


def test_fallback_font_supplies_what_the_primary_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = renderer(missing="fallback", fallback_fonts=(DEJAVU,))
    assert not r.has_glyph(ARMENIAN) and r.render(ARMENIAN).any()
    bank = r.render_bank(["国", ARMENIAN, PUA], cache_dir=tmp_path, progress=False)
    assert bank.fallback_used == {ARMENIAN: "DejaVu Sans"} and bank.missing == [PUA]
    assert bank.glyphs[1].any() and not bank.glyphs[2].any()
    assert bank.settings["fallback_fonts"][0]["name"] == "DejaVu Sans"
    assert "1 taken from fallback fonts, 1 rendered blank" in capsys.readouterr().err


def test_a_latin_font_with_a_cjk_fallback_draws_cjk_as_the_cjk_font_does() -> None:
    noto_path, sc_face = default_font()
    # built here rather than by the cached `renderer`: the fallback fonts are loaded in __init__
    latin_first = GlyphRenderer(RenderConfig(font=DEJAVU, missing="fallback", fallback_fonts=[f"{noto_path}#{sc_face}"]))
    assert not latin_first.has_glyph("国")
    np.testing.assert_array_equal(latin_first.render("国"), GlyphRenderer(RenderConfig()).render("国"))


def test_fallback_spec_selects_a_face_of_a_collection() -> None:
    noto_path, sc_face = default_font()
    r = renderer(font=DEJAVU, missing="fallback", fallback_fonts=(f"{noto_path}#{sc_face}",))
    assert r.font.name == "DejaVu Sans" and not r.has_glyph("国")
    assert r.render("国").any() and r._face_for("国").info.name == "Noto Sans CJK SC"


# ----------------------------------------------------------------------------- specials and tokens


def test_specials_are_synthetic_glyphs(tmp_path: Path) -> None:
    bank = renderer(res=8).render_bank(
        ["<pad>", "<unk>", "<sep>"], specials=["<pad>", "<unk>", "<sep>"], cache_dir=tmp_path, progress=False
    )
    pad, unk, sep = bank.glyphs
    assert not pad.any()
    box = np.zeros((8, 8), dtype=np.float32)
    box[1:7, 1:7] = 1.0
    np.testing.assert_array_equal(sep, box)
    box[2:6, 2:6] = 0.0  # a one-pixel outline of the ink box
    np.testing.assert_array_equal(unk, box)


def test_specials_are_cropped_like_every_glyph(tmp_path: Path) -> None:
    bank = renderer(res=8, crop=0.5).render_bank(["<sep>"], specials=["<sep>"], cache_dir=tmp_path, progress=False)
    assert bank.glyphs[0, 1:4, 1:7].all() and not bank.glyphs[0, 4:].any()


def test_unknown_special_and_multi_character_token_are_refused(tmp_path: Path) -> None:
    r = renderer(res=8)
    with pytest.raises(HotStartError, match="unknown special"):
        r.render_bank(["<bos>"], specials=["<bos>"], cache_dir=tmp_path)
    with pytest.raises(HotStartError, match="neither one character nor a special"):
        r.render_bank(["国", "中国"], cache_dir=tmp_path)
    with pytest.raises(HotStartError, match="single character"):
        r.render("中国")


# ----------------------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"res": 0}, "res"),
        ({"res": 3}, "res"),
        ({"res": 1000}, "res"),
        ({"res": 8.0}, "res"),
        ({"crop": 0}, "crop"),
        ({"crop": 1.5}, "crop"),
        ({"margin": 0.5}, "margin"),
        ({"margin": -0.1}, "margin"),
        ({"missing": "foo"}, "missing"),
        ({"face": -1}, "face"),
        ({"font": 3}, "font=3"),
        ({"fallback_fonts": "NotoSans.ttf"}, "fallback_fonts='NotoSans.ttf'"),
        ({"res": 4, "margin": 0.45}, "no ink area at res 4; use a smaller margin or a larger res"),
        ({"missing": "fallback"}, "--fallback-font"),
        ({"fallback_fonts": [DEJAVU]}, "--missing fallback"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kw: dict, field: str) -> None:
    with pytest.raises(HotStartError, match=field):
        RenderConfig(**kw).validate()
    with pytest.raises(HotStartError):
        GlyphRenderer(RenderConfig(**kw))


def test_out_of_range_message_names_value_and_range() -> None:
    with pytest.raises(HotStartError, match=r"res=1000 .* an integer from 4 to 128"):
        RenderConfig(res=1000).validate()


# ----------------------------------------------------------------------------- cache


def test_bank_is_cached_and_loaded_without_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = ["<pad>", "国", "我", PUA]
    first = GlyphRenderer(RenderConfig()).render_bank(tokens, specials=["<pad>"], cache_dir=tmp_path, progress=False)
    files = list((tmp_path / "glyphs").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # and no temp file left behind

    def no_render(self: GlyphRenderer, ch: str) -> np.ndarray:
        raise AssertionError("rendered although the bank is cached")

    monkeypatch.setattr(GlyphRenderer, "render", no_render)
    second = GlyphRenderer(RenderConfig()).render_bank(tokens, specials=["<pad>"], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first.glyphs, second.glyphs)
    assert second.missing == first.missing == [PUA]
    assert (second.fallback_used, second.settings) == (first.fallback_used, first.settings)


def test_cache_key_changes_with_settings_and_tokens(tmp_path: Path) -> None:
    renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    renderer(res=8).render_bank(["我"], cache_dir=tmp_path, progress=False)
    renderer(res=8, crop=0.5).render_bank(["国"], cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "glyphs").glob("*.npz"))) == 3


def test_cache_dir_defaults_to_hotstart_cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTSTART_CACHE", str(tmp_path))
    renderer(res=8).render_bank(["国"], progress=False)
    assert len(list((tmp_path / "glyphs").glob("*.npz"))) == 1


def test_cache_dir_without_hotstart_cache_is_dot_cache_hotstart_in_home(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTSTART_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    renderer(res=8).render_bank(["国"], progress=False)
    assert len(list((tmp_path / ".cache" / "hotstart" / "glyphs").glob("*.npz"))) == 1


def test_cache_key_changes_with_the_pillow_and_freetype_versions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(hotstart.render.glyph, "PILLOW_VERSION", "0.0.0")
    renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    version = features.version
    monkeypatch.setattr(features, "version", lambda name: "0.0.0" if name == "freetype2" else version(name))
    renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "glyphs").glob("*.npz"))) == 3  # another Pillow or FreeType may draw other pixels


def test_cache_file_is_made_in_the_cache_folder_not_the_system_temp_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # written beside its final name, the temporary file is renamed atomically, and a missing or
    # full system temp folder (here one that does not exist) does not cost the cache
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no_system_tmp"))
    renderer(res=8).render_bank(["国"], cache_dir=tmp_path / "cache", progress=False)
    assert "warning" not in capsys.readouterr().err
    assert len(list((tmp_path / "cache" / "glyphs").glob("*.npz"))) == 1


def test_cache_file_records_the_settings_it_was_rendered_with(tmp_path: Path) -> None:
    bank = renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    (path,) = (tmp_path / "glyphs").glob("*.npz")
    with np.load(path, allow_pickle=False) as data:  # for whoever finds the file: what drew it
        assert json.loads(str(data["settings"])) == bank.settings


def test_corrupt_cache_file_is_rendered_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    (path,) = (tmp_path / "glyphs").glob("*.npz")
    path.write_bytes(b"truncated")
    again = renderer(res=8).render_bank(["国"], cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(good.glyphs, again.glyphs)
    assert "unreadable" in capsys.readouterr().err
    with np.load(path) as data:  # rewritten whole
        assert data["glyphs"].shape == (1, 8, 8)


# ----------------------------------------------------------------------------- preview grid


def test_render_grid_writes_a_png_of_the_documented_size(tmp_path: Path) -> None:
    out = render_grid("国█", tmp_path / "grid.png", RenderConfig(res=8), cell_px=24)
    with Image.open(out) as im:
        rows = 4 * 3  # resolutions 4, 8, 20, 40 x crops 100, 80, 50 %
        assert im.size == (96 + 2 * (24 + 2) + 2, rows * (24 + 2) + 2)
        pixels = np.asarray(im.convert("L"))
    assert pixels.min() == 0 and pixels.max() == 255  # full ink of "█" is black, background white


def _label_cell(text: str, height: int) -> np.ndarray:
    """A grid's label cell as it should look: black text in Pillow's default font, 6 px from the left
    and centred vertically, on a white 96-pixel column."""
    cell = Image.new("L", (96, height), 255)
    ImageDraw.Draw(cell).text((6, height // 2), text, fill=0, font=ImageFont.load_default(), anchor="lm")
    return np.asarray(cell)


def test_render_grid_labels_each_row_in_a_white_column_between_grey_gaps(tmp_path: Path) -> None:
    out = render_grid("国", tmp_path / "grid.png", RenderConfig(), resolutions=[4, 8], crops=(1.0, 0.5), cell_px=40)
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("L"))
    step = 40 + 2
    assert sheet.shape == (4 * step + 2, 96 + step + 2)
    for row, label in enumerate(["4x4 100%", "4x4 50%", "8x8 100%", "8x8 50%"]):
        y = 2 + row * step
        np.testing.assert_array_equal(sheet[y:y + 40, :96], _label_cell(label, 40), err_msg=label)
        assert (sheet[y - 2:y] == 160).all() and (sheet[y:y + 40, 96:98] == 160).all()  # gaps above and beside
    assert (sheet[-2:] == 160).all() and (sheet[:, -2:] == 160).all()


def test_render_grid_by_default_shows_each_paper_resolution_that_leaves_an_ink_box(tmp_path: Path) -> None:
    # at margin 0.4 res 4 has no ink box (2 px of margin a side) and res 5 one pixel: rows 5, 8, 20, 40
    out = render_grid("国", tmp_path / "grid.png", RenderConfig(res=5, margin=0.4), cell_px=8)
    with Image.open(out) as im:
        assert im.size == (96 + 10 + 2, 4 * 3 * 10 + 2)


# ----------------------------------------------------------------------------- any input


any_char = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))  # surrogates included


@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=any_char, max_size=6), policy=st.sampled_from(["blank", "error", "fallback"]))
def test_any_character_renders_or_raises_hotstarterror(text: str, policy: str) -> None:
    fallbacks = (DEJAVU,) if policy == "fallback" else ()
    r = renderer(res=8, missing=policy, fallback_fonts=fallbacks)
    for ch in text:
        try:
            glyph = r.render(ch)
        except HotStartError:
            assert policy == "error" and not r.has_glyph(ch)
            continue
        assert glyph.shape == (8, 8) and np.isfinite(glyph).all()
        assert glyph.min() >= 0.0 and glyph.max() <= 1.0
