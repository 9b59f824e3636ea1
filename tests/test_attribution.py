"""The toast centre, measured: the renderer's centre and border masks (--keep), per-pixel attribution
with Captum (analysis/attribution.py), and the `attribution` grid with its report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_tiny_vision_run

from hotstart.analysis.attribution import (
    AttributionConfig,
    NextCharScore,
    attribute,
    sample_positions,
    share_maps,
    top_mass,
)
from hotstart.cli import main
from hotstart.data.prepared import PAD_ID, SPECIALS, PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.models.decoder import decoder_size
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig, glyph_bank
from hotstart.render.glyph import GlyphRenderer, RenderConfig, centre_region


@pytest.mark.parametrize(("res", "kept", "of"), [(4, 4, 16), (8, 12, 36), (20, 76, 256)])
def test_the_centre_is_whole_rings_of_the_ink_box_nearest_thirty_percent(res: int, kept: int, of: int) -> None:
    cfg = RenderConfig(res=res)
    region = centre_region(cfg)
    assert region.sum() == kept and cfg.ink_px ** 2 == of
    assert np.array_equal(region, region.T) and np.array_equal(region, region[::-1]) and np.array_equal(region, region[:, ::-1])
    m = cfg.margin_px
    assert not region[:m].any() and not region[:, :m].any()  # never in the blank margin
    assert region[res // 2, res // 2]


def test_keeping_the_centre_or_the_border_blanks_exactly_the_other_pixels() -> None:
    text = "中国人民银行的政策"
    whole = np.stack([GlyphRenderer(RenderConfig(res=8)).render(ch) for ch in text])
    centre = np.stack([GlyphRenderer(RenderConfig(res=8, keep="centre")).render(ch) for ch in text])
    border = np.stack([GlyphRenderer(RenderConfig(res=8, keep="border")).render(ch) for ch in text])
    region = centre_region(RenderConfig(res=8))
    assert np.array_equal(centre[:, region], whole[:, region]) and not centre[:, ~region].any()
    assert np.array_equal(border[:, ~region], whole[:, ~region]) and not border[:, region].any()
    assert centre[:, region].sum() > 0 and border[:, ~region].sum() > 0
    # the crop still applies: the rows it hides stay blank under a mask too
    cropped = GlyphRenderer(RenderConfig(res=8, crop=0.5, keep="border")).render("中")
    assert not cropped[1 + 3 :].any()
    for field, value in (("keep", "middle"), ("centre_share", 1.0)):
        with pytest.raises(HotStartError, match=f"render option {field}="):
            RenderConfig(res=8, **{field: value}).validate()
    with pytest.raises(HotStartError, match="only read with keep centre or border"):
        RenderConfig(res=8, centre_share=0.5).validate()
    with pytest.raises(HotStartError, match="makes the centre the whole 4x4 ink box"):
        RenderConfig(res=4, keep="border", centre_share=0.9).validate()


def _tiny_vision_model(vocab_chars: str, res: int = 8, **options) -> HotStartLM:
    torch.manual_seed(0)
    glyphs = glyph_bank(list(SPECIALS) + list(vocab_chars), SPECIALS, RenderConfig(res=res), progress=False)
    head = options.pop("head", "linear")
    model = HotStartLM(ModelConfig(len(glyphs), InputConfig(kind="vision", render=RenderConfig(res=res), **options),
                                   decoder_size("tiny"), head=head), glyphs)
    return model.eval()


@pytest.mark.parametrize("options", [{}, {"center": True, "head": "glyph"}])
def test_the_attributed_score_is_the_models_own_log_probability_of_the_next_character(options: dict) -> None:
    model = _tiny_vision_model("中国人民银行的政策，。", **options)
    windows = torch.randint(len(SPECIALS), len(model.input.glyphs), (6, 10))
    targets = torch.randint(len(SPECIALS), len(model.input.glyphs), (6,))
    with torch.no_grad():
        logits, _ = model(windows)
        expected = torch.log_softmax(logits[:, -1].float(), -1).gather(1, targets[:, None]).squeeze(1)
        got = NextCharScore(model)(model.input.glyphs[windows[:, -1]], windows, targets)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("res", [8, 20])
def test_attribution_is_complete_zero_on_blank_pixels_and_occlusion_is_the_drop_in_score(res: int) -> None:
    model = _tiny_vision_model("中国人民银行的政策", res=res)
    windows = torch.randint(len(SPECIALS), len(model.input.glyphs), (4, 8))
    targets = torch.randint(len(SPECIALS), len(model.input.glyphs), (4,))
    pixels = model.input.glyphs[windows[:, -1]]
    cfg = AttributionConfig(positions=4, context=8, steps=64, batch=4)
    trainable = [p.requires_grad for p in model.parameters()]
    ig, checks = attribute(model, windows, targets, cfg, "integrated_gradients")
    assert [p.requires_grad for p in model.parameters()] == trainable and any(trainable)  # the model as it was
    score = NextCharScore(model)
    with torch.no_grad():
        change = score(pixels, windows, targets) - score(torch.zeros_like(pixels), windows, targets)
    assert torch.allclose(ig.sum((1, 2)), change, atol=1e-3 * change.abs().max().item() + 1e-6)
    assert checks["completeness_gap"] < 0.01
    occ, _ = attribute(model, windows, targets, cfg, "occlusion")
    blank = pixels == 0
    assert not ig[blank].any() and not occ[blank].any()  # nothing to take away where there is no ink
    row, col = (pixels[0] > 0).nonzero()[0].tolist()  # occlusion: one pixel at a time
    hidden = pixels.clone()
    hidden[0, row, col] = 0
    with torch.no_grad():
        drop = score(pixels[:1], windows[:1], targets[:1]) - score(hidden[:1], windows[:1], targets[:1])
    assert occ[0, row, col].item() == pytest.approx(drop.item(), abs=1e-5)


def test_positions_read_an_inked_glyph_and_their_target_is_the_next_character() -> None:
    glyphs = torch.zeros(10, 4, 4)
    glyphs[5:] = 1.0  # IDs 5..9 draw ink, 3..4 draw nothing
    generator = torch.Generator().manual_seed(1)
    sequences = torch.randint(3, 10, (20, 24), generator=generator)
    sequences[:, -3:] = PAD_ID
    windows, targets = sample_positions(sequences, glyphs, AttributionConfig(positions=50, context=6))
    assert windows.shape == (50, 6) and (windows[:, -1] >= 5).all() and (targets != PAD_ID).all()
    text = [row.tolist() for row in sequences]
    for window, target in zip(windows.tolist(), targets.tolist()):  # each window and target occur in a sequence
        assert any(any(row[i : i + 7] == [*window, target] for i in range(len(row) - 6)) for row in text)
    with pytest.raises(HotStartError, match="prepared with --seq-len above 24"):
        sample_positions(sequences, glyphs, AttributionConfig(context=24))


def test_share_maps_sum_to_one_and_the_top_share_of_a_flat_map_is_its_pixel_share() -> None:
    values = torch.randn(5, 6, 6)
    values[2] = 0  # nothing attributed: dropped
    shares = share_maps(values)
    assert shares.shape == (4, 6, 6) and torch.allclose(shares.sum((1, 2)), torch.ones(4))
    assert top_mass(torch.full((1, 6, 6), 1 / 36), 6) == pytest.approx(11 / 36)


def test_the_attribution_grid_measures_each_member_and_reports(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "attribution"
    args = ["sweep", "attribution", "--scale", "smoke", "--out", str(out), "--data", str(tiny_corpus.path),
            "--only", "vision-4x4", "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == ["vision-4x4: done"]
    measured = json.loads((out / "runs" / "attribution-vision-4x4" / "pixels.json").read_text())
    assert measured["res"] == 4 and measured["centre_pixels_share"] == 0.25
    for key in ("ink", "integrated_gradients", "occlusion"):
        assert np.array(measured[key]["map"]).sum() == pytest.approx(1.0, abs=1e-5)
        assert 0 <= measured[key]["in_centre"] <= 1
    assert set(measured["accuracy"]) == {"all", "centre", "border"}
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == ["vision-4x4: done before"]
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## The toast centre, measured" in report
    row = next(line for line in report.splitlines() if line.startswith("| vision-4x4 |"))
    assert row.count("|") == 12 and "| 25.00 |" in row
    assert (tmp_path / "report" / "attribution.png").is_file() and (tmp_path / "report" / "attribution.csv").is_file()


def test_eval_keeps_the_centre_or_the_border_and_an_index_run_has_no_pixels_to_attribute(
        tiny_corpus: PreparedCorpus, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = train_tiny_vision_run(tiny_corpus, tmp_path / "vision")
    capsys.readouterr()
    losses = {}
    for kept in ("all", "centre", "border"):
        assert main(["eval", str(run), "--keep", kept, "--sequences", "8", "--quiet"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["render"]["keep"] == kept
        losses[kept] = result["val_loss"]
    assert len(set(losses.values())) == 3  # three different pictures, three different losses
    index = HotStartLM(ModelConfig(12, InputConfig(kind="index"), decoder_size("tiny")))
    with pytest.raises(HotStartError, match="an index run reads no pixels"):
        NextCharScore(index)
