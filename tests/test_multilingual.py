"""Several sources prepared into one folder (PIXEL-M4's languages): each document's language, a
validation set drawn equally from each language, and training that samples the languages equally."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import inews_sample

from hotstart.cli import main
from hotstart.data.prepared import PrepareConfig, PreparedCorpus, SampleOrder, prepare
from hotstart.errors import HotStartError

ENGLISH = "\n".join(f"Line {i} of an English text that is long enough to fill a sequence or two." for i in range(400))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> PreparedCorpus:
    """Chinese news (a lot) and English (a little), each file labelled with its language."""
    tmp = tmp_path_factory.mktemp("mixed")
    (tmp / "zh.txt").write_text(inews_sample(200), encoding="utf-8")
    (tmp / "en.txt").write_text(ENGLISH, encoding="utf-8")
    cfg = PrepareConfig(corpus=f"zh={tmp / 'zh.txt'}", extra_corpora=[f"en={tmp / 'en.txt'}"], seq_len=64,
                        val_sequences=40, min_freq=1, split_lines=True)
    return prepare(cfg, tmp / "data", progress=False)


def test_every_sequence_knows_its_language_and_validation_takes_equally_from_each(mixed: PreparedCorpus) -> None:
    languages = mixed.sequence_languages
    assert set(np.unique(languages)) == {"en", "zh"}
    zh, en = (languages == "zh").sum(), (languages == "en").sum()
    assert zh > 5 * en  # the sources differ in size ...
    val = languages[mixed.val_index]
    assert (val == "zh").sum() == (val == "en").sum() == 20  # ... the validation set does not
    assert mixed.meta["languages"]["en"] == {"train": int(en) - 20, "val": 20}
    assert {"L", "e", "新", "闻"} <= set(mixed.vocab.chars)  # one vocabulary for both scripts
    assert "sequence" in mixed.vocab.decode(mixed.sequences(np.flatnonzero(languages == "en")[1:2])[0])


def test_balanced_order_gives_every_language_an_equal_share_of_each_epoch(mixed: PreparedCorpus) -> None:
    groups = mixed.sequence_languages[mixed.train_index]
    order = SampleOrder(mixed.train_index, seed=0, batch_size=16, curriculum=False, groups=groups)
    smallest = min((groups == g).sum() for g in ("en", "zh"))
    assert order.epoch_size(0) == 2 * smallest
    epoch0 = np.concatenate([order.batch(step)[0] for step in range(order.epoch_size(0) // 16)])
    shares = mixed.sequence_languages[epoch0]
    assert abs((shares == "en").sum() - (shares == "zh").sum()) <= 16  # the last partial batch aside
    # the larger language shows other sequences in the next epoch; a resumed order is the same
    next_epoch = order._order(1)
    assert set(next_epoch[mixed.sequence_languages[next_epoch] == "zh"]) != set(order._order(0)[
        mixed.sequence_languages[order._order(0)] == "zh"])
    again = SampleOrder(mixed.train_index, seed=0, batch_size=16, curriculum=False, groups=groups)
    assert np.array_equal(again.batch(7)[0], order.batch(7)[0])


def test_balanced_sampling_refuses_the_curriculum(mixed: PreparedCorpus) -> None:
    with pytest.raises(HotStartError, match="--no-curriculum"):
        SampleOrder(mixed.train_index, 0, 16, curriculum=True, groups=mixed.sequence_languages[mixed.train_index])


def test_one_language_is_sampled_as_before(tiny_corpus: PreparedCorpus) -> None:
    plain = SampleOrder(tiny_corpus.train_index, 3, 16, curriculum=False)
    grouped = SampleOrder(tiny_corpus.train_index, 3, 16, curriculum=False,
                          groups=tiny_corpus.sequence_languages[tiny_corpus.train_index])
    assert all(np.array_equal(plain.batch(s)[0], grouped.batch(s)[0]) for s in (0, 5, 200))


def test_an_mae_run_on_two_languages_reports_each_languages_loss(mixed: PreparedCorpus, tmp_path: Path) -> None:
    run = tmp_path / "mae"
    assert main(["train", "--objective", "mae", "--data", str(mixed.path), "--size", "tiny", "--max-patches", "81",
                 "--batch-size", "8", "--max-samples", "16", "--eval-every", "16", "--eval-sequences", "8",
                 "--precision", "fp32", "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        assert row["val_loss"] == pytest.approx((row["val_loss_en"] + row["val_loss_zh"]) / 2)  # 4 lines each
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_lines"] == 8


def test_several_corpora_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text(ENGLISH, encoding="utf-8")
    (tmp_path / "zh.txt").write_text(inews_sample(100), encoding="utf-8")
    assert main(["prepare", "--corpus", f"zh={tmp_path / 'zh.txt'}", "--corpus", f"en={tmp_path / 'en.txt'}",
                 "--seq-len", "64", "--val-sequences", "10", "--min-freq", "1", "--out", str(tmp_path / "d"),
                 "--quiet"]) == 0
    corpus = PreparedCorpus.load(tmp_path / "d")
    assert corpus.config.extra_corpora == [f"en={tmp_path / 'en.txt'}"]
    assert set(corpus.sequence_languages[corpus.val_index]) == {"en", "zh"}
