"""Other typefaces: training on a mix of fonts (--mix-font), evaluating in another one, and the `fonts`
grid with its report section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import train_tiny_vision_run

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.experiments.fonts import MEMBERS, Typeface, resolve
from hotstart.models.decoder import decoder_size
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from hotstart.render.fonts import default_font, face_named


def test_a_training_step_draws_each_glyph_in_one_of_the_mixed_fonts_and_evaluation_in_the_primary() -> None:
    vocab = 12
    primary = torch.zeros(vocab, 8, 8)
    mixed = torch.stack([torch.full((vocab, 8, 8), 1.0), torch.full((vocab, 8, 8), 2.0)])  # two more fonts
    model = HotStartLM(ModelConfig(vocab, InputConfig(kind="vision"), decoder_size("tiny")), primary, mixed)
    torch.manual_seed(0)
    rows = torch.arange(vocab).repeat(100)
    fonts, counts = model.input.drawn(rows).mean((1, 2)).unique(return_counts=True)
    assert fonts.tolist() == [0.0, 1.0, 2.0] and counts.min() > 300  # each font about a third of 1,200 draws
    # the pixel statistics are over every font's glyphs, as training sees them all
    assert model.input.pixel_mean.item() == pytest.approx(1.0)
    model.eval()
    with torch.no_grad():  # evaluation reads the primary font's bank only
        assert torch.equal(model.input.table(), model.input._centred(model.input.embed_glyphs(primary)))
    plain = HotStartLM(ModelConfig(vocab, InputConfig(kind="vision"), decoder_size("tiny")), primary)
    assert torch.equal(plain.input.drawn(rows), primary[rows])


def test_a_mixed_font_run_records_its_fonts_and_evaluates_in_another(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    path, _ = default_font()
    tc, jp = face_named(path, "Noto Sans CJK TC"), face_named(path, "Noto Sans CJK JP")
    run = train_tiny_vision_run(tiny_corpus, tmp_path / "mix", "--mix-font", f"{path}#{tc}")
    render = json.loads((run / "render.json").read_text())
    assert [f["font_face"] for f in render["mix_fonts"]] == [tc]
    capsys.readouterr()
    assert main(["eval", str(run), "--font", path, "--face", str(jp), "--sequences", "8", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["render"]["face"] == jp and 0 <= result["val_acc"] <= 1


def test_a_font_that_is_not_installed_is_named_with_how_to_install_it() -> None:
    with pytest.raises(HotStartError, match="apt install fonts-noto-cjk"):
        resolve(Typeface("Noto Serif CJK SC", "/nonexistent/NotoSerifCJK-Regular.ttc", "fonts-noto-cjk (Debian)"))
    with pytest.raises(HotStartError, match="has no face named Noto Sans CJK XX"):
        resolve(Typeface("Noto Sans CJK XX", None, "noto-cjk-sans-otc (PyPI)"))


def test_the_fonts_grid_evaluates_every_member_in_every_typeface_and_reports(tiny_corpus: PreparedCorpus,
                                                                            tmp_path: Path, capsys) -> None:
    out = tmp_path / "fonts"
    args = ["sweep", "fonts", "--scale", "smoke", "--out", str(out), "--data", str(tiny_corpus.path), "--quiet"]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m}: done" for m in MEMBERS]
    record = json.loads((out / "fonts.json").read_text())
    assert [t["name"] for t in record["typefaces"]] == [f"Noto Sans CJK {r}" for r in ("SC", "TC", "JP", "KR")]
    results = {m: json.loads((out / "runs" / f"fonts-{m}" / "typefaces.json").read_text()) for m in MEMBERS}
    index_acc = {r["val_acc"] for r in results["index"]["results"]}
    assert len(results["index"]["results"]) == 4 and len(index_acc) == 1  # no typeface touches an index LM
    assert results["vision"]["trained_on"] == ["Noto Sans CJK SC"]
    assert results["vision-mix"]["trained_on"] == ["Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP"]
    config = (out / "runs" / "fonts-vision-mix" / "config.yaml").read_text()
    assert "mix_fonts" in config and "#" in config
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m}: done before" for m in MEMBERS]
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and "member" not in line]
    assert [line.split(" | ")[0][2:] for line in table] == list(MEMBERS)
    assert table[2].count("*") == 3 and table[1].count("*") == 1
    assert (tmp_path / "report" / "fonts.png").is_file() and (tmp_path / "report" / "fonts.csv").is_file()
    # robustness: the same members and runs, evaluated with perturbed input (nothing trains again)
    capsys.readouterr()
    assert main(["sweep", "robustness", *args[2:]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{m}: done" for m in MEMBERS]
    robust = {m: json.loads((out / "runs" / f"fonts-{m}" / "robustness.json").read_text()) for m in MEMBERS}
    index_rows = {(r["perturbation"], r["level"]): r["val_acc"] for r in robust["index"]["results"]}
    # noise and stroke dropout touch glyphs only: the index LM reads the same IDs at every level
    assert all(acc == robust["index"]["clean_val_acc"] for (kind, _), acc in index_rows.items() if kind != "confusable_share")
    vision_rows = {(r["perturbation"], r["level"]): r["val_acc"] for r in robust["vision"]["results"]}
    assert vision_rows[("noise", 0.4)] != robust["vision"]["clean_val_acc"]
    assert all(0 < r["swapped"] < 0.4 for r in robust["vision"]["results"] if r["perturbation"] == "confusable_share")
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Noisy and look-alike input" in report and (tmp_path / "report" / "robustness.png").is_file()


def test_perturbations_change_glyphs_or_inputs_as_asked_and_nothing_else() -> None:
    from hotstart.data.prepared import SPECIALS, Vocab
    from hotstart.render.glyph import RenderConfig
    from hotstart.render.perturb import (
        Perturbation,
        lookalikes,
        perturb_glyphs,
        swap_lookalikes,
    )

    glyphs = (torch.rand(50, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.6).float()
    dropped = perturb_glyphs(glyphs, Perturbation(stroke_dropout=0.5))
    assert ((dropped > 0) <= (glyphs > 0)).all()  # ink only removed
    assert 0.4 < 1 - dropped.sum() / glyphs.sum() < 0.6
    noisy = perturb_glyphs(glyphs, Perturbation(noise=0.2))
    assert noisy.min() >= 0 and noisy.max() <= 1 and 0.05 < (noisy - glyphs).abs().mean() < 0.2
    assert torch.equal(perturb_glyphs(glyphs, Perturbation(noise=0.2)), noisy)  # one seed, one draw
    chars = list("日曰目白百自木本未末大太犬天夫")
    vocab = Vocab([*SPECIALS, *chars], [0, 0, 0, *range(len(chars), 0, -1)])
    table = lookalikes(vocab, RenderConfig())
    assert table[:3].tolist() == [0, 1, 2]  # specials stay
    look = {chars[i - 3]: chars[int(table[i]) - 3] for i in range(3, len(vocab))}
    assert look["日"] in "曰目白" and look["未"] in "末本" and look["大"] in "太犬天夫"
    assert all(a != b for a, b in look.items())
    sequences = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 11] * 20])
    swapped = swap_lookalikes(sequences, table, 0.3)
    changed = swapped != sequences
    assert (sequences[changed] >= 3).all() and torch.equal(swapped[changed], table[sequences][changed])
    assert 0.15 < changed.float().mean() < 0.45
    with pytest.raises(HotStartError, match="--stroke-dropout must be a number from 0 to 1"):
        Perturbation(stroke_dropout=1.5).validate()
