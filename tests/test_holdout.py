"""Characters held out of training (`--holdout-share`) and the glyph-tied head (`--head glyph`): the draw
by frequency band, that a held-out character never reaches a training step, that the head scores a
character from its glyph, and the evaluation of what a model makes of characters it never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hotstart.cli import main
from hotstart.data.holdout import Holdout, HoldoutConfig, held_out_ids
from hotstart.data.prepared import PAD_ID, UNK_ID, PreparedCorpus, Vocab
from hotstart.errors import HotStartError
from hotstart.models.decoder import decoder_size
from hotstart.models.hotstart_lm import HotStartLM, InputConfig, ModelConfig
from hotstart.render.glyph import RenderConfig
from hotstart.training.config import TrainConfig
from hotstart.training.loop import OBJECTIVES
from hotstart.training.run import RunConfig


def test_held_out_characters_come_from_every_frequency_band_and_depend_only_on_their_seed() -> None:
    vocab = Vocab(["<pad>", "<unk>", "<sep>", *[chr(0x4E00 + i) for i in range(100)]], [0, 0, 0, *range(100, 0, -1)])
    held = held_out_ids(vocab, HoldoutConfig(share=0.1, seed=3))
    assert len(held) == 10 and held.min() >= 3 and len(set(held.tolist())) == 10
    bands = np.array_split(np.arange(3, 103), 5)
    assert [len(set(held.tolist()) & set(b.tolist())) for b in bands] == [2] * 5
    assert np.array_equal(held, held_out_ids(vocab, HoldoutConfig(share=0.1, seed=3)))
    assert not np.array_equal(held, held_out_ids(vocab, HoldoutConfig(share=0.1, seed=4)))
    assert len(held_out_ids(vocab, HoldoutConfig())) == 0
    with pytest.raises(HotStartError, match="--holdout-share"):
        HoldoutConfig(share=1.0).validate()


def test_a_held_out_character_never_appears_in_a_training_batch(tiny_corpus: PreparedCorpus) -> None:
    cfg = RunConfig(data=str(tiny_corpus.path), model=ModelConfig(0, InputConfig(kind="index"), decoder_size("tiny")),
                    train=TrainConfig(batch_size=64, eval_sequences=8))
    cfg.holdout = HoldoutConfig(share=0.2)
    objective = OBJECTIVES["next-char"](cfg, tiny_corpus)
    objective.check()
    held = torch.as_tensor(held_out_ids(tiny_corpus.vocab, cfg.holdout))
    raw = tiny_corpus.sequences(tiny_corpus.train_index[:64])
    assert torch.isin(raw, held).any()  # the corpus has them
    inputs, targets = objective.batch(tiny_corpus.train_index[:64], step=0)
    assert not torch.isin(inputs, held).any() and not torch.isin(targets, held).any()
    assert torch.equal(inputs[torch.isin(raw, held)], torch.full_like(inputs[torch.isin(raw, held)], UNK_ID))
    assert (targets[torch.isin(raw, held)] == PAD_ID).all()


def tiny_vision(head: str, vocab_size: int = 40) -> HotStartLM:
    torch.manual_seed(0)
    glyphs = torch.rand(vocab_size, 8, 8)
    inp = InputConfig(kind="vision", render=RenderConfig(res=8))
    return HotStartLM(ModelConfig(vocab_size, inp, decoder_size("tiny"), head=head), glyphs)


def test_the_glyph_head_scores_each_character_by_its_encoded_glyph_a_bias_and_a_residual() -> None:
    model = tiny_vision("glyph").eval()
    ids = torch.randint(3, 40, (2, 6))
    with torch.no_grad():
        model.head_bias.normal_()
        model.lm_head.weight.normal_(std=0.02)
        logits, _ = model(ids)
        h = model.decoder(inputs_embeds=model.input(ids)).last_hidden_state
        expected = h @ (model.input.table() + model.lm_head.weight).T + model.head_bias
    assert torch.allclose(logits, expected, atol=1e-4)
    # at the start the residual is zero: the glyphs alone (and the bias) score
    assert not tiny_vision("glyph").lm_head.weight.any()


@pytest.mark.parametrize("head", ["linear", "glyph"])
def test_excluded_outputs_get_no_gradient_and_the_fused_loss_matches_the_plain_one(head: str) -> None:
    model = tiny_vision(head).train()
    held = torch.tensor([5, 17, 30])
    model.exclude_outputs(held)
    ids = torch.randint(3, 40, (2, 9))
    targets = Holdout(held.numpy(), 40).targets(ids)
    _, fused = model(ids[:, :-1], targets[:, 1:], return_logits=False)  # CPU: the chunked loss
    logits, plain = model(ids[:, :-1], targets[:, 1:])
    assert logits.shape[-1] == 37 and torch.allclose(fused, plain, atol=1e-5)
    plain.backward()
    grad = model.lm_head.weight.grad
    assert not grad[held].any() and grad[[3, 4, 6]].any()
    if head == "glyph":
        assert not model.head_bias.grad[held].any()
    model.eval()
    with torch.no_grad():
        assert model(ids[:, :-1])[0].shape[-1] == 40  # evaluation: the whole vocabulary


def test_a_held_out_run_reports_what_it_makes_of_unseen_characters(tiny_corpus: PreparedCorpus, tmp_path: Path) -> None:
    run = tmp_path / "unseen"
    assert main(["train", "--data", str(tiny_corpus.path), "--input", "vision", "--head", "glyph", "--size", "tiny",
                 "--holdout-share", "0.2", "--batch-size", "16", "--max-samples", "32", "--eval-every", "16",
                 "--precision", "fp32", "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert last["val_heldout_positions"] > 0 and last["val_heldout_answers"] > 0
    assert 0 <= last["val_heldout_top10"] <= 1 and 0 <= last["val_acc_after_heldout"] <= 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["head"] == "glyph" and summary["held_out"] == len(held_out_ids(tiny_corpus.vocab, HoldoutConfig(0.2)))


@pytest.mark.parametrize("extra, words", [
    (["--head", "glyph"], "--head glyph scores characters by their encoded glyphs; it needs --input vision"),
    (["--holdout-share", "1.5"], "--holdout-share must be at least 0 and below 1"),
    (["--objective", "mae", "--holdout-share", "0.1"], "--holdout-share is not an option of --objective mae"),
])
def test_bad_holdout_options_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path, capsys, extra, words) -> None:
    assert main(["train", "--data", str(tiny_corpus.path), "--size", "tiny", "--max-samples", "16", "--out",
                 str(tmp_path / "bad"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_the_unseen_grid_names_its_three_members_and_the_report_has_a_section_for_held_out_runs(
        tiny_corpus: PreparedCorpus, tmp_path: Path, capsys) -> None:
    assert main(["sweep", "unseen", "--scale", "smoke", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("final-index-held0.05-s0", "final-simp-8x8-held0.05-s0", "final-simp-8x8-glyphhead-held0.05-s0"):
        assert name in listed
    runs = tmp_path / "sweep" / "runs"
    common = ["--data", str(tiny_corpus.path), "--size", "tiny", "--batch-size", "16", "--max-samples", "16",
              "--eval-every", "16", "--precision", "fp32", "--device", "cpu", "--quiet"]
    assert main(["train", *common, "--holdout-share", "0.2", "--out", str(runs / "final-index-held0.2-s0")]) == 0
    assert main(["train", *common, "--out", str(runs / "final-index-s0")]) == 0
    assert main(["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    before, section = report.split("## Characters never seen in training")
    table = [line for line in section.split("\n## ")[0].splitlines() if line.startswith("| final-")]
    # 16 sequences teach nothing: the run is marked as failed, not read as a result
    assert len(table) == 1 and table[0].startswith("| final-index-held0.2-s0 (failed: learned nothing) | index | linear |")
    assert "final-index-held0.2-s0 never trained: its best accuracy stayed within 0.5 pp of always predicting" in section
    assert (tmp_path / "report" / "unseen.png").is_file()
    assert "final-index-held0.2-s0" not in before  # the held-out run stays out of the paper's tables
