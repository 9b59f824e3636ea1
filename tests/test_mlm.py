"""The character BERT, the pixel MAE's index baseline (`hotstart train --objective mlm`): BERT's
corruption, drawn from (seed, step, sequence), the model the MAE encoder's size, and runs of the one loop
with the MAE's training settings."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hotstart.cli import main
from hotstart.data.prepared import PAD_ID, PreparedCorpus
from hotstart.models.char_bert import IGNORE, CharBert, CharBertConfig, bert_masking
from hotstart.models.mae import MAEConfig, PixelMAE
from hotstart.training.config import TrainConfig, line_train_defaults
from hotstart.training.mlm_run import MaskedChars, MLMRunConfig

TIMING = ("samples_per_s", "wall_s")


def mlm_args(corpus: PreparedCorpus, out: Path, *extra: str) -> list[str]:
    return ["train", "--objective", "mlm", "--data", str(corpus.path), "--size", "tiny", "--batch-size", "8",
            "--max-samples", "48", "--eval-every", "16", "--dense-until", "48", "--eval-sequences", "8",
            "--precision", "fp32", "--device", "cpu", "--out", str(out), "--quiet", *extra]


def objective(corpus: PreparedCorpus, **train: object) -> MaskedChars:
    cfg = MLMRunConfig(data=str(corpus.path), model=CharBertConfig(size="tiny"),
                       train=TrainConfig(**{**vars(line_train_defaults()), "eval_sequences": 8, **train}))
    made = MaskedChars(cfg, corpus)
    made.check()
    return made


def test_bert_masking_chooses_15_percent_and_corrupts_them_80_10_10() -> None:
    cfg = CharBertConfig(vocab_size=1000)
    ids = np.random.default_rng(0).integers(3, 1000, size=200)
    ids[190:] = PAD_ID
    labels, kept, masked, randomised = 0, 0, 0, 0
    for seed in range(300):
        inputs, lab = bert_masking(ids, cfg, np.random.default_rng(seed))
        chosen = lab != IGNORE
        assert chosen.sum() == round(0.15 * 190) and not chosen[190:].any()  # padding is never chosen
        assert (lab[chosen] == ids[chosen]).all() and (inputs[~chosen] == ids[~chosen]).all()
        masked += (inputs[chosen] == cfg.mask_id).sum()
        kept += (inputs[chosen] == ids[chosen]).sum()
        randomised += ((inputs[chosen] != ids[chosen]) & (inputs[chosen] != cfg.mask_id)).sum()
        labels += chosen.sum()
    assert masked / labels == pytest.approx(0.8, abs=0.02)
    assert kept / labels == pytest.approx(0.1, abs=0.02) and randomised / labels == pytest.approx(0.1, abs=0.02)
    again = bert_masking(ids, cfg, np.random.default_rng(7))
    assert all((a == b).all() for a, b in zip(again, bert_masking(ids, cfg, np.random.default_rng(7))))


def test_the_bert_has_the_mae_encoders_shape_over_a_character_table() -> None:
    bert = CharBert(CharBertConfig(size="small-cpu", vocab_size=500, max_positions=64)).bert
    vit = PixelMAE(MAEConfig(size="small-cpu")).mae.vit
    assert bert.config.hidden_size == vit.config.hidden_size and bert.config.num_hidden_layers == vit.config.num_hidden_layers
    assert bert.config.intermediate_size == vit.config.intermediate_size
    assert bert.config.num_attention_heads == vit.config.num_attention_heads
    assert bert.config.vocab_size == 501  # the corpus's characters and [MASK]
    block = lambda m: sum(p.numel() for p in m.parameters())
    assert block(bert.bert.encoder) == block(vit.layers)  # blocks of the same size (BERT post-norm, ViT pre-norm)


def test_corruption_comes_from_seed_step_and_sequence_so_shards_and_resumes_agree(tiny_corpus: PreparedCorpus) -> None:
    made = objective(tiny_corpus)
    index = tiny_corpus.train_index[:6]
    ids, labels = made.batch(index, step=3)
    assert all(torch.equal(a, b) for a, b in zip((ids, labels), made.batch(index, step=3)))
    assert torch.equal(made.batch(index[2:4], step=3)[1], labels[2:4])  # one process's slice under torchrun
    assert not torch.equal(made.batch(index, step=4)[1], labels)
    assert not torch.equal(objective(tiny_corpus, seed=1).batch(index, step=3)[1], labels)
    original = tiny_corpus.sequences(index)
    assert torch.equal(labels[labels != IGNORE], original[labels != IGNORE])


def test_a_few_steps_lower_the_loss_and_evaluation_is_deterministic(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.precision import resolve

    made = objective(tiny_corpus)
    torch.manual_seed(0)
    model = made.build_model(progress=False)
    prec = resolve("cpu", "fp32")
    first = made.evaluate(model, prec)
    assert first == made.evaluate(model, prec) and model.training
    assert first["val_loss"] == pytest.approx(np.log(len(tiny_corpus.vocab) + 1), rel=0.1)  # untrained: near uniform
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = made.batch(tiny_corpus.train_index[:16], step=0)
    losses = []
    for _ in range(15):
        loss = made.loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_an_mlm_run_writes_its_folder_with_the_mae_training_settings_and_resumes_exactly(
        tiny_corpus: PreparedCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(mlm_args(tiny_corpus, tmp_path / "reference")) == 0
    saved = yaml.safe_load((tmp_path / "reference" / "config.yaml").read_text())
    assert saved["objective"] == "mlm" and saved["model"]["vocab_size"] == len(tiny_corpus.vocab)
    defaults = vars(line_train_defaults())
    assert all(saved["train"][k] == defaults[k] for k in ("lr_max", "schedule", "warmup_samples", "curriculum"))
    rows = [json.loads(line) for line in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert [r["samples"] for r in rows] == [0, 16, 32, 48] and all(0 <= r["val_acc"] <= 1 for r in rows)
    loop = importlib.import_module("hotstart.training.loop")
    real, calls = loop.save_training_state, []

    def killed_after_the_second_state(path, *args, **kwargs):
        real(path, *args, **kwargs)
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_training_state", killed_after_the_second_state)
    assert main(mlm_args(tiny_corpus, tmp_path / "killed")) == 130
    monkeypatch.setattr(loop, "save_training_state", real)
    assert main([*mlm_args(tiny_corpus, tmp_path / "killed"), "--resume"]) == 0
    strip = lambda run: [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                         for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert strip(tmp_path / "killed") == strip(tmp_path / "reference")


@pytest.mark.parametrize("extra, words", [(["--mask-ratio", "0.3"], "--mask-ratio is not an option of --objective mlm"),
                                          (["--input", "vision"], "--input is not an option of --objective mlm"),
                                          (["--mask-prob", "1.5"], "mask_prob must be between 0 and 1")])
def test_options_of_other_objectives_are_refused_in_one_line(tiny_corpus: PreparedCorpus, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture, extra: list[str],
                                                             words: str) -> None:
    assert main(mlm_args(tiny_corpus, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]


def test_the_optimizer_does_not_decay_the_character_table(tiny_corpus: PreparedCorpus) -> None:
    from hotstart.training.loop import make_optimizer

    made = objective(tiny_corpus)
    model = made.build_model(progress=False)
    decayed = {id(p) for g in make_optimizer(model, made.config.train).param_groups if g["weight_decay"] > 0
               for p in g["params"]}
    named = dict(model.named_parameters())
    assert id(named["bert.bert.embeddings.word_embeddings.weight"]) not in decayed
    assert id(named["bert.bert.encoder.layer.0.attention.self.query.weight"]) in decayed


def test_the_loss_on_labelled_positions_alone_is_bertformaskedlms_own(tiny_corpus: PreparedCorpus) -> None:
    made = objective(tiny_corpus)
    torch.manual_seed(0)
    model = made.build_model(progress=False).eval()
    ids, labels = made.batch(tiny_corpus.train_index[:4], step=0)
    loss, logits = model(ids, labels)
    own = model.bert(input_ids=ids, attention_mask=(ids != PAD_ID).long(), labels=labels)
    torch.testing.assert_close(loss, own.loss)
    torch.testing.assert_close(logits, own.logits[labels != IGNORE])
