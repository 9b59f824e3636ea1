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
