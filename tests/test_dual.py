"""DualGPT (`hotstart train --objective dual`): one decoder on character IDs, rendered lines, and lines
paired with their text; the batch split, the pair's causality, the loss mix, the run and its resume."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hotstart.cli import main
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError
from hotstart.models.dual_lm import DualLM, DualLMConfig
from hotstart.models.pixel_lm import PixelLMConfig
from hotstart.render.line import LineRenderConfig, LineRenderer

TIMING = ("samples_per_s", "wall_s")


def tiny_dual(**kw: object) -> DualLM:
    torch.manual_seed(0)
    pixel = PixelLMConfig(size="tiny", line=LineRenderConfig(patch=8, cell="char", max_patches=12))
    return DualLM(DualLMConfig(pixel=pixel, vocab_size=30, seq_len=10, **kw))


def lines(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    drawn = LineRenderer(LineRenderConfig(patch=8, cell="char", max_patches=12)).render_batch(texts)
    return torch.from_numpy(drawn.patches), torch.from_numpy(drawn.lengths)


def test_a_batch_splits_into_text_pixels_and_pairs_by_the_configured_mix() -> None:
    cfg = DualLMConfig()
    assert cfg.shares() == pytest.approx({"text": 0.4, "pixels": 0.4, "pair": 0.2})  # the paper's 4:4:2
    assert cfg.split(32) == {"text": 13, "pixels": 13, "pair": 6}
    assert DualLMConfig(pixel_text_ratio=0.0, pair_share=0.0).split(8) == {"text": 8, "pixels": 0, "pair": 0}
    assert DualLMConfig(pixel_text_ratio=3.0, pair_share=0.5).split(8) == {"text": 1, "pixels": 3, "pair": 4}
    for bad in ({"pair_share": 1.5}, {"pixel_text_ratio": -1.0}):
        with pytest.raises(HotStartError):
            DualLMConfig(**bad).validate()


def test_a_pair_reads_its_first_character_from_the_line_alone_and_stays_causal() -> None:
    model = tiny_dual().eval()
    patches, _ = lines(["一二三四五六七八九十", "十九八七六五四三二一"])
    ids = torch.randint(3, 30, (2, 10))
    with torch.no_grad():
        logits = model.pair_logits(patches, ids)
        assert logits.shape == (2, 10, 30)
        changed = ids.clone()
        changed[:, 5] = (ids[:, 5] + 1 - 3) % 27 + 3
        after = model.pair_logits(patches, changed)
        assert torch.allclose(logits[:, :6], after[:, :6], atol=1e-5)  # character 5 is an input to 6 onwards only
        assert not torch.allclose(logits[:, 6:], after[:, 6:])
        other_line = model.pair_logits(patches.flip(0), ids)
        assert not torch.allclose(logits[:, 0], other_line[:, 0])  # the first character depends on the picture


def test_the_loss_is_the_kinds_losses_weighted_by_their_sequences() -> None:
    model = tiny_dual().eval()
    patches, lengths = lines(["一二三四五六七八九十", "十九八七六五四三二一", "一二三"])
    text, pair_ids = torch.randint(3, 30, (3, 10)), torch.randint(3, 30, (2, 10))
    with torch.no_grad():
        loss = model(text, patches[:1], lengths[:1], patches[1:], pair_ids)
        text_loss = F.cross_entropy(model.text_logits(text).flatten(0, 1), text[:, 1:].flatten())
        pixel_loss = model.pixel(patches[:1], lengths[:1])
        pair_loss = F.cross_entropy(model.pair_logits(patches[1:], pair_ids).flatten(0, 1), pair_ids.flatten())
    assert loss.item() == pytest.approx(((3 * text_loss + pixel_loss + 2 * pair_loss) / 6).item(), rel=1e-5)


def dual_args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    return ["train", "--objective", "dual", "--data", str(corpus.path), "--size", "tiny", "--max-patches", "40",
            "--patch", "8", "--cell", "char", "--batch-size", "10", "--max-samples", "40", "--eval-every", "20",
            "--dense-until", "40", "--eval-sequences", "8", "--precision", "fp32", "--device", "cpu",
            "--out", str(out), "--quiet", *extra]


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def test_a_dual_run_logs_each_kind_and_resumes_exactly(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(dual_args(tiny_corpus, tmp_path / "reference")) == 0
    rows = rows_without_timing(tmp_path / "reference")
    assert [r["samples"] for r in rows] == [0, 20, 40]
    for key in ("val_acc", "val_text_loss", "val_pixel_loss", "val_pair_loss", "val_pair_acc"):
        assert key in rows[-1]
    # char cells: the pixel path's next character ranked by its own score, beside the floors
    assert 0 <= rows[-1]["val_pixel_rank1_acc"] <= rows[-1]["val_pixel_rank10_acc"] <= 1
    assert 0 < rows[-1]["floor_most_frequent_acc"] < 1
    assert rows[-1]["val_text_loss"] < rows[0]["val_text_loss"]
    summary = json.loads((tmp_path / "reference" / "summary.json").read_text())
    assert summary["objective"] == "dual" and summary["parameters"]["char_head"] > 0
    loop = importlib.import_module("hotstart.training.loop")
    real, calls = loop.save_training_state, []

    def killed_after_the_second_state(path, *a, **kw):
        real(path, *a, **kw)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_training_state", killed_after_the_second_state)
    assert main(dual_args(tiny_corpus, tmp_path / "killed")) == 130
    monkeypatch.setattr(loop, "save_training_state", real)
    assert main([*dual_args(tiny_corpus, tmp_path / "killed"), "--resume"]) == 0
    assert rows_without_timing(tmp_path / "killed") == rows


@pytest.mark.parametrize("extra, words", [
    (["--pair-share", "1.5"], "--pair-share must be from 0 to 1"),
    (["--pixel-text-ratio", "-1"], "--pixel-text-ratio must be a finite number >= 0"),
    (["--stage", "2"], "--stage is not an option of --objective dual"),
])
def test_bad_dual_options_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture, extra: list, words: str) -> None:
    assert main(dual_args(tiny_corpus, tmp_path / "bad", *extra)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and not (tmp_path / "bad").exists()
