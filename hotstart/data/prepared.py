"""Vocabulary, the prepared (encoded) corpus, and the order training samples are drawn in.

`prepare` turns a corpus into a folder that training reads without touching the text again:

    vocab.json      tokens (<pad> <unk> <sep>, then characters by frequency) and their counts
    tokens.bin      the stream doc1 <sep> doc2 <sep> ... docN <sep> as uint16 (uint32 past 65,535 tokens)
    splits.npz      int64 `train` and `val`: indices of the non-overlapping seq_len sequences
    documents.npz   int64 `offsets` (first token of each document), str `labels` and str `languages`
                    ("" where a source does not say; folders prepared before it have no `languages`)
    meta.json       the PrepareConfig, every count of what cleaning changed, sizes, timing

Several sources can be prepared into one folder (`extra_corpora`), PIXEL-M4's four languages for
example: the validation sequences are then drawn equally from each language, and `SampleOrder` can
sample the languages equally (`groups`), as PIXEL-M4 pretrains on equal amounts of each.

`SampleOrder` is the quadratic curriculum of the paper (sec. "Dataset") as a pure function of
(seed, step), so a run can resume at any step and runs line up sample for sample.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import flag, from_dict, to_dict
from ..errors import HotStartError
from .corpus import (
    BUILTIN,
    FORMATS,
    NORMALIZATIONS,
    CleanStats,
    Document,
    builtin_version,
    clean_texts,
    codepoints,
    read_documents,
)

SPECIALS = ("<pad>", "<unk>", "<sep>")
PAD_ID, UNK_ID, SEP_ID = 0, 1, 2
FORMAT_VERSION = 1
# Documents are joined with "\n" before encoding, and "\n" becomes <sep>: cleaned text never holds
# a newline (whitespace collapses to spaces), so the separator cannot clash with the text.
_SEP_CHAR = "\n"
_CHUNK_CHARS = 1 << 23  # documents are cleaned, counted and encoded ~8M chars at a time to bound memory


class Vocab:
    """Characters <-> ids: SPECIALS at ids 0, 1, 2, then characters by descending frequency."""

    def __init__(self, tokens: list[str], counts: list[int]) -> None:
        """Wrap `tokens` (SPECIALS first, then single characters) and their corpus `counts`."""
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS or len(tokens) != len(counts):
            raise ValueError("a Vocab needs SPECIALS first and one count per token")
        self.tokens = list(tokens)
        self.counts = [int(n) for n in counts]
        self._table: np.ndarray | None = None  # code point -> id, built on first encode

    def __len__(self) -> int:
        """Number of tokens, specials included."""
        return len(self.tokens)

    @property
    def chars(self) -> list[str]:
        """The non-special tokens (single characters), in id order."""
        return self.tokens[len(SPECIALS):]

    @property
    def most_frequent(self) -> int:
        """The ID of the most frequent character (characters follow the specials, most frequent first); the last
        special's ID + 1 in an empty vocabulary."""
        return len(SPECIALS)

    def is_special(self, i: int) -> bool:
        """Whether id `i` is <pad>, <unk> or <sep>."""
        return 0 <= int(i) < len(SPECIALS)

    @classmethod
    def build(cls, counts: dict[str, int] | Counter, min_freq: int) -> Vocab:
        """The vocabulary of characters seen at least `min_freq` times (ties by code point)."""
        kept = sorted((ch for ch, n in counts.items() if n >= min_freq), key=lambda ch: (-counts[ch], ord(ch)))
        return cls(list(SPECIALS) + kept, [0] * len(SPECIALS) + [int(counts[ch]) for ch in kept])

    def encode_codepoints(self, cps: np.ndarray) -> np.ndarray:
        """Ids (int64) of code points `cps`; characters outside the vocabulary -> UNK_ID."""
        if self._table is None:
            chars = np.array([ord(ch) for ch in self.chars], dtype=np.int64)
            self._table = np.full(int(chars.max(initial=0)) + 2, UNK_ID, dtype=np.int64)
            self._table[chars] = np.arange(len(SPECIALS), len(self))
        # code points past the table's end land on its last entry, which is always UNK_ID.
        return self._table[np.minimum(cps, len(self._table) - 1)]

    def encode(self, text: str) -> np.ndarray:
        """Ids (int64, one per character) of `text`; unknown characters -> UNK_ID."""
        return self.encode_codepoints(codepoints(text))

    def decode(self, ids: Any) -> str:
        """Text of `ids` (list, numpy or torch); specials come out as their names, e.g. "<sep>"."""
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got {ids.min()}..{ids.max()}")
        return "".join(np.asarray(self.tokens, dtype=object)[ids])

    def save(self, path: str | Path) -> None:
        """Write vocab.json: {"tokens": [...], "counts": [...], "specials": [...]}."""
        data = {"tokens": self.tokens, "counts": self.counts, "specials": list(SPECIALS)}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocab.json written by `save`; a missing or malformed file is a HotStartError."""
        fix = "re-run hotstart prepare to rewrite it"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HotStartError(f"vocabulary {path} does not exist; {fix}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HotStartError(f"vocabulary {path} is not readable JSON ({exc}); {fix}".splitlines()[0]) from None
        tokens, counts = (data.get("tokens"), data.get("counts")) if isinstance(data, dict) else (None, None)
        problem = _vocab_problem(data, tokens, counts)
        if problem:
            raise HotStartError(f"vocabulary {path} is malformed: {problem}; {fix}")
        return cls(tokens, counts)


def _vocab_problem(data: Any, tokens: Any, counts: Any) -> str | None:
    """What is wrong with the contents of a vocab.json, or None."""
    if not isinstance(tokens, list) or not isinstance(counts, list):
        return 'needs lists "tokens" and "counts"'
    if data.get("specials") != list(SPECIALS) or tuple(tokens[: len(SPECIALS)]) != SPECIALS:
        return f"specials must be {list(SPECIALS)} at ids 0-{len(SPECIALS) - 1}"
    if len(tokens) != len(counts) or not all(type(n) is int and n >= 0 for n in counts):
        return "needs one non-negative integer count per token"
    chars = tokens[len(SPECIALS):]
    if not all(isinstance(ch, str) and len(ch) == 1 for ch in chars) or len(set(chars)) != len(chars):
        return "characters must be distinct single characters"
    return None


@dataclass
class PrepareConfig:
    """How a corpus becomes a prepared folder (saved in its meta.json)."""

    corpus: str = field(metadata=flag(by_hand=True))  # --corpus, repeated: this and `extra_corpora`
    """"inews" (the built-in corpus), another built-in name, or a file/folder path."""
    extra_corpora: list[str] = field(default_factory=list, metadata=flag(cli=False))
    """More sources prepared into the same folder after `corpus` (say PIXEL-M4's languages); each
    document keeps its source's language, and the validation set takes equally from each language.
    Any source may be written LANG=SOURCE (uk=essays/) to give its documents that language."""
    format: str = "auto"
    """auto | thucnews | text | jsonl (see hotstart.data.corpus.read_documents)."""
    encoding: str = "utf-8"
    """Text encoding of the corpus files; decoding is strict."""
    normalization: str = "NFKC"
    """Unicode normalisation: NFKC | NFC | NFKD | NFD | none."""
    min_freq: int = field(default=5, metadata=flag(check="positive_int"))
    """Characters seen fewer times map to <unk>."""
    seq_len: int = field(default=128, metadata=flag(check="two_or_more"))
    """Characters per sequence; paper: fixed sequences of 128 characters."""
    val_sequences: int = field(default=5000, metadata=flag(check="positive_int"))
    """Validation sequences; paper: a fixed validation set of 5k sequences."""
    seed: int = 0
    """Chooses the validation sequences."""
    split_lines: bool = False
    """Text corpora: every non-empty line is its own document."""
    corpus_version: int | None = field(default=None, metadata=flag(check="positive_int"))
    """A built-in `corpus`: the version of its text to read (corpus.BuiltinCorpus.version); None reads the newest,
    and the prepared folder records the one read (extra built-in sources read their newest). Folders prepared
    before versions existed read version 1."""

    def check(self) -> None:
        """Raise HotStartError for a bad value, before any reading (paths are checked by reading)."""
        if self.normalization not in NORMALIZATIONS:
            raise HotStartError(f"unknown normalization {self.normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
        if self.format not in FORMATS:
            raise HotStartError(f"unknown corpus format {self.format!r}; use one of {', '.join(FORMATS)}")
        if self.corpus_version is not None and self.corpus not in BUILTIN:
            raise HotStartError("--corpus-version chooses the text of a built-in corpus; drop it for files and folders")
        for name, low in (("min_freq", 1), ("seq_len", 2), ("val_sequences", 1), ("seed", 0)):
            if getattr(self, name) < low:
                raise HotStartError(f"{name} must be >= {low}, got {getattr(self, name)}; "
                                    f"pass a larger --{name.replace('_', '-')}")


@dataclass
class _Cleaned:
    """The cleaned documents of a corpus and what cleaning did."""

    texts: list[str]
    labels: list[str]
    languages: list[str]
    stats: CleanStats
    raw_chars: int  # characters read, before cleaning
    dropped: int  # documents empty after cleaning


def _clean_corpus(cfg: PrepareConfig, progress: bool) -> _Cleaned:
    """Read and clean every document of cfg.corpus and cfg.extra_corpora, dropping those left empty."""
    cleaned = _Cleaned([], [], [], CleanStats(), 0, 0)
    docs = itertools.chain.from_iterable(_read_source(source, cfg, progress) for source in [cfg.corpus, *cfg.extra_corpora])
    for batch in _batches(docs):
        # cleaning a batch at once costs a few numpy calls, however many documents it holds
        texts = clean_texts([doc.text for doc in batch], cfg.normalization, cleaned.stats)
        for doc, text in zip(batch, texts):
            cleaned.raw_chars += len(doc.text)
            if text:
                cleaned.texts.append(text)
                cleaned.labels.append(doc.label or "")
                cleaned.languages.append(doc.language or "")
            else:
                cleaned.dropped += 1
    return cleaned


def _read_source(source: str, cfg: PrepareConfig, progress: bool) -> Iterator[Document]:
    """The documents of one source; "LANG=SOURCE" (say uk=essays/) sets their language."""
    match = re.fullmatch(r"([a-z]{2,3})=(.+)", source)
    language, source = (match.group(1), match.group(2)) if match else (None, source)
    version = cfg.corpus_version if source == cfg.corpus else None
    for doc in read_documents(source, cfg.format, cfg.encoding, cfg.split_lines, progress, version):
        if language:
            doc.language = language
        yield doc


def _batches(docs: Iterator[Document]) -> Iterator[list[Document]]:
    """`docs` in lists of about _CHUNK_CHARS characters."""
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += len(doc.text)
        if size >= _CHUNK_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _chunks(texts: list[str]) -> Iterator[np.ndarray]:
    """Code points of the stream text1 \\n text2 \\n ... textN \\n, cut at document ends into
    ~8M-char pieces; made again for each pass rather than held, as they take 4 bytes a char."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text) + 1
        if size >= _CHUNK_CHARS or i == len(texts) - 1:
            yield codepoints(_SEP_CHAR.join(texts[start: i + 1]) + _SEP_CHAR)
            start, size = i + 1, 0


def _count_chars(chunks: Iterator[np.ndarray]) -> dict[str, int]:
    """Corpus frequency of every character (separators excluded)."""
    counts = np.zeros(0x110000, np.int64)
    for cps in chunks:
        counts += np.bincount(cps, minlength=len(counts))  # O(n), no sort; (0x110000,)
    counts[ord(_SEP_CHAR)] = 0
    return {chr(c): int(counts[c]) for c in np.flatnonzero(counts)}


def _write_tokens(chunks: Iterator[np.ndarray], n_tokens: int, vocab: Vocab, path: Path) -> np.dtype:
    """Encode the stream into the memmap `path` (written under a temporary name, then renamed)."""
    dtype = np.dtype(np.uint16 if len(vocab) <= 65535 else np.uint32)
    tmp = path.with_name(path.name + ".tmp")
    tokens = np.memmap(tmp, dtype=dtype, mode="w+", shape=(n_tokens,))
    start = 0
    for cps in chunks:
        ids = vocab.encode_codepoints(cps)
        ids[cps == ord(_SEP_CHAR)] = SEP_ID
        tokens[start: start + len(cps)] = ids
        start += len(cps)
    tokens.flush()
    del tokens
    os.replace(tmp, path)
    return dtype


def _split(n_seq: int, cfg: PrepareConfig, n_chars: int, languages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) sequence indices: disjoint, sorted, together all of range(n_seq). With several
    languages (`languages`: each sequence's), val_sequences is shared equally between them."""
    if n_seq < 2:
        raise HotStartError(f"corpus {cfg.corpus} has {n_chars:,} characters after cleaning, fewer than 2 sequences "
                            f"of {cfg.seq_len}; use a larger corpus or a smaller --seq-len")
    n_val = cfg.val_sequences
    if n_seq < 2 * n_val:
        n_val = max(1, n_seq // 10)
        print(f"warning: corpus has only {n_seq:,} sequences of {cfg.seq_len}, fewer than 2 x val_sequences "
              f"({cfg.val_sequences:,}); using {n_val:,} validation sequences (a tenth)", file=sys.stderr)
    names = np.unique(languages)
    if len(names) > 1:
        val = _stratified_val(languages, names, n_val, np.random.default_rng(cfg.seed))
    else:
        val = np.sort(np.random.default_rng(cfg.seed).choice(n_seq, size=n_val, replace=False)).astype(np.int64)
    is_val = np.zeros(n_seq, bool)
    is_val[val] = True
    return np.flatnonzero(~is_val).astype(np.int64), val


def _stratified_val(languages: np.ndarray, names: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """n_val // len(names) validation sequences of each language (at most a tenth of a small one's,
    so it keeps training sequences), sorted."""
    picks = []
    for name in names:
        own = np.flatnonzero(languages == name)
        picks.append(rng.choice(own, size=max(1, min(n_val // len(names), len(own) // 10)), replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)


def sequence_languages(doc_offsets: np.ndarray, doc_languages: np.ndarray, n_seq: int, seq_len: int) -> np.ndarray:
    """(n_seq,) the language of the document each sequence starts in."""
    first_doc = np.searchsorted(doc_offsets, np.arange(n_seq, dtype=np.int64) * seq_len, side="right") - 1
    return doc_languages[first_doc]


def prepare(cfg: PrepareConfig, out_dir: str | Path, progress: bool = True, overwrite: bool = False) -> PreparedCorpus:
    """Clean, count and encode cfg.corpus into `out_dir` (see the module docstring) and load it.

    A folder that already holds a prepared corpus is refused unless `overwrite`.
    """
    start = time.perf_counter()
    cfg.check()
    if cfg.corpus in BUILTIN:  # the version read, recorded with the folder's settings
        cfg = replace(cfg, corpus_version=builtin_version(cfg.corpus, cfg.corpus_version))
    out = Path(out_dir)
    if (out / "meta.json").exists() and not overwrite:
        raise HotStartError(f"{out} already holds a prepared corpus; pass --overwrite to replace it "
                            "or choose another --out")
    cleaned = _clean_corpus(cfg, progress)
    if not cleaned.texts:
        raise HotStartError(f"corpus {cfg.corpus} has no characters after cleaning; "
                            "check --corpus, --format and --encoding")
    counts = _count_chars(_chunks(cleaned.texts))
    vocab = Vocab.build(counts, cfg.min_freq)
    if not vocab.chars:
        raise HotStartError(
            f"no character of corpus {cfg.corpus} occurs --min-freq {cfg.min_freq} times, so every character "
            f"would be <unk> (the most frequent occurs {max(counts.values()):,} times); lower --min-freq"
        )
    n_chars = sum(counts.values())
    n_tokens = n_chars + len(cleaned.texts)  # one <sep> after every document
    lengths = np.array([len(t) + 1 for t in cleaned.texts], dtype=np.int64)
    offsets, languages = np.cumsum(lengths) - lengths, np.array(cleaned.languages, dtype=str)
    n_seq = n_tokens // cfg.seq_len
    train, val = _split(n_seq, cfg, n_chars, sequence_languages(offsets, languages, n_seq, cfg.seq_len))
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # the folder counts as prepared only once meta.json is back
    vocab.save(out / "vocab.json")
    dtype = _write_tokens(_chunks(cleaned.texts), n_tokens, vocab, out / "tokens.bin")
    np.savez(out / "splits.npz", train=train, val=val)
    np.savez(out / "documents.npz", offsets=offsets, labels=np.array(cleaned.labels, dtype=str), languages=languages)
    unk = {ch: n for ch, n in counts.items() if n < cfg.min_freq}
    seconds = time.perf_counter() - start
    meta = {
        "format_version": FORMAT_VERSION, "config": to_dict(cfg), "dtype": dtype.name,
        "n_tokens": n_tokens, "n_chars": n_chars, "raw_chars": cleaned.raw_chars,
        "n_sequences": len(train) + len(val), "n_train": len(train), "n_val": len(val),
        "n_documents": len(cleaned.texts), "documents_dropped_empty": cleaned.dropped,
        "vocab_size": len(vocab), "unk_tokens": sum(unk.values()), "unk_chars": len(unk),
        "clean": asdict(cleaned.stats), "tail_tokens_dropped": n_tokens % cfg.seq_len,
        **_language_counts(sequence_languages(offsets, languages, n_seq, cfg.seq_len), train, val),
        "seconds": round(seconds, 3), "chars_per_second": round(cleaned.raw_chars / max(seconds, 1e-9)),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    print(_summary(meta, out))
    return PreparedCorpus.load(out)


def _language_counts(languages: np.ndarray, train: np.ndarray, val: np.ndarray) -> dict[str, Any]:
    """meta.json's per-language sequence counts, for a folder of several languages (else nothing)."""
    names = np.unique(languages)
    if len(names) < 2:
        return {}
    return {"languages": {str(name): {"train": int((languages[train] == name).sum()), "val": int((languages[val] == name).sum())}
                          for name in names}}


def _summary(meta: dict, out: Path) -> str:
    """A few human lines: sizes, and every count of what was changed or mapped to <unk>."""
    cfg, clean = meta["config"], meta["clean"]
    return "\n".join([
        f"prepared {' + '.join([cfg['corpus'], *cfg.get('extra_corpora', [])])} -> {out} in {meta['seconds']:.1f} s ({meta['chars_per_second']:,} chars/s)",
        (f"  {meta['n_documents']:,} documents ({meta['documents_dropped_empty']:,} dropped as empty after cleaning), "
        f"{meta['raw_chars']:,} chars read -> {meta['n_chars']:,} chars + {meta['n_documents']:,} <sep> "
         f"= {meta['n_tokens']:,} tokens"),
        (f"  cleaning: normalised {clean['normalized']:,} chars ({cfg['normalization']}), "
        f"removed {clean['escapes_removed']:,} escape sequences and {clean['controls_removed']:,} control/format "
         f"chars, collapsed {clean['whitespace_collapsed']:,} whitespace runs"),
        (f"  vocab: {meta['vocab_size']:,} tokens (min_freq {cfg['min_freq']}); {meta['unk_chars']:,} rarer "
         f"distinct chars ({meta['unk_tokens']:,} occurrences) mapped to <unk>"),
        (f"  sequences: {meta['n_sequences']:,} x {cfg['seq_len']} (train {meta['n_train']:,}, val {meta['n_val']:,}); "
         f"last {meta['tail_tokens_dropped']:,} tokens dropped"),
        *([("  languages: " + ", ".join(f"{name} {n['train']:,} train / {n['val']:,} val"
                                        for name, n in meta["languages"].items()))] if "languages" in meta else []),
    ])


class PreparedCorpus:
    """A folder written by `prepare`, opened for training: vocabulary, token memmap, splits."""

    def __init__(self, path: Path, meta: dict, vocab: Vocab, tokens: np.memmap, splits: dict, documents: dict) -> None:
        """Use `PreparedCorpus.load`; this only stores what it read."""
        self.path, self.meta, self.vocab, self.tokens = path, meta, vocab, tokens
        self.config = from_dict(PrepareConfig, meta["config"])
        self.seq_len = self.config.seq_len
        self.train_index: np.ndarray = splits["train"]
        self.val_index: np.ndarray = splits["val"]
        self.doc_offsets: np.ndarray = documents["offsets"]  # (n_documents,) first token in `tokens`
        self.labels: np.ndarray = documents["labels"]  # (n_documents,) str, "" where unlabelled
        self.doc_languages: np.ndarray = documents["languages"]  # (n_documents,) str, "" where unknown
        self.n_sequences = int(meta["n_sequences"])
        # (n_sequences,) the language of the document each sequence starts in
        self.sequence_languages = sequence_languages(self.doc_offsets, self.doc_languages, self.n_sequences, self.seq_len)
        # (n_sequences, seq_len) view of the stream; the tail after the last whole sequence is left out
        self._rows = tokens[: self.n_sequences * self.seq_len].reshape(self.n_sequences, self.seq_len)

    def fingerprint(self) -> str:
        """A short hash of what a run trains and evaluates on: the prepare settings, the counts, the
        vocabulary and the split. A folder re-prepared with other settings or text gets another one."""
        timing = ("seconds", "chars_per_second")
        meta = {k: v for k, v in self.meta.items() if k not in timing and k != "config"}
        # the source may move; no extra sources reads as a folder prepared before they existed
        # ... and version 1 of a built-in corpus reads as a folder prepared before versions existed
        config = {k: v for k, v in self.meta["config"].items()
                  if k != "corpus" and (k != "extra_corpora" or v) and (k != "corpus_version" or v not in (None, 1))}
        digest = hashlib.sha256(json.dumps([meta, config, self.vocab.tokens], sort_keys=True).encode())
        digest.update(self.train_index.tobytes() + self.val_index.tobytes())
        return digest.hexdigest()[:16]

    def sequences(self, index: np.ndarray) -> torch.Tensor:
        """(n, seq_len) int64 tensor whose row i is sequence index[i], gathered from the memmap."""
        return torch.from_numpy(self._rows[np.asarray(index, dtype=np.int64)].astype(np.int64))

    @classmethod
    def load(cls, path: str | Path) -> PreparedCorpus:
        """Open a prepared folder; a missing, partial or inconsistent one is a HotStartError."""
        path = Path(path)
        fix = f"run `hotstart prepare --corpus ... --out {path}` (add --overwrite to redo it)"
        if not (path / "meta.json").is_file():
            what = "does not exist" if not path.exists() else "is not a prepared corpus (no meta.json)"
            raise HotStartError(f"{path} {what}; {fix}")
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {meta.get('format_version')} is not {FORMAT_VERSION}")
            vocab = Vocab.load(path / "vocab.json")
            dtype = np.dtype(meta["dtype"])
            if os.path.getsize(path / "tokens.bin") != meta["n_tokens"] * dtype.itemsize:
                raise ValueError(f"tokens.bin has {os.path.getsize(path / 'tokens.bin'):,} bytes, "
                                 f"not {meta['n_tokens']:,} tokens x {dtype.itemsize}")
            tokens = np.memmap(path / "tokens.bin", dtype=dtype, mode="r", shape=(meta["n_tokens"],))
            with np.load(path / "splits.npz") as z:
                splits = {"train": z["train"].astype(np.int64), "val": z["val"].astype(np.int64)}
            with np.load(path / "documents.npz") as z:
                documents = {"offsets": z["offsets"].astype(np.int64), "labels": z["labels"],
                             "languages": z["languages"] if "languages" in z else np.full(len(z["labels"]), "")}
            _check_consistent(meta, vocab, splits, documents)
            return cls(path, meta, vocab, tokens, splits, documents)
        except HotStartError as exc:
            raise HotStartError(f"{str(exc).split('; ')[0]}; {fix}") from None
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise HotStartError(f"prepared corpus {path} is corrupt: {exc}; {fix}".replace("\n", " ")) from None


def _check_consistent(meta: dict, vocab: Vocab, splits: dict, documents: dict) -> None:
    """Raise ValueError where the files of a prepared folder disagree with meta.json."""
    train, val = splits["train"], splits["val"]
    if len(vocab) != meta["vocab_size"] or (meta["dtype"] == "uint16") != (len(vocab) <= 65535):
        raise ValueError(f"vocab.json has {len(vocab)} tokens, meta.json says {meta['vocab_size']} ({meta['dtype']})")
    if len(train) != meta["n_train"] or len(val) != meta["n_val"] or len(train) + len(val) != meta["n_sequences"]:
        raise ValueError("splits.npz does not match the sequence counts in meta.json")
    n_seq = meta["n_sequences"]
    if len(np.union1d(train, val)) != n_seq or n_seq * meta["config"]["seq_len"] > meta["n_tokens"]:
        raise ValueError("splits.npz does not cover the sequences exactly once")
    if len(documents["offsets"]) != meta["n_documents"] or len(documents["labels"]) != meta["n_documents"]:
        raise ValueError("documents.npz does not match n_documents in meta.json")


CURRICULUM_ORDERS = ("fresh", "prefix")


def curriculum_size(epoch: int) -> int:
    """Training sequences in curriculum epoch `epoch` (0-based): 5000 + 918.37 e + 18.74 e^2 (paper
    sec. "Dataset"), rounded half up. Computed in integer hundredths, so there is no float error."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return (500_000 + 91_837 * epoch + 1_874 * epoch * epoch + 50) // 100


class SampleOrder:
    """The deterministic stream of training sequence indices: epoch e is the first
    curriculum_size(e) entries of a fresh seeded permutation of the training set (several
    permutations concatenated when curriculum_size(e) > n_train). Batches are cut from this stream
    continuously across epoch boundaries so every batch has exactly batch_size samples and
    evaluation points in samples line up across runs.

    Epoch e draws its permutations from np.random.default_rng([seed, e]), so any epoch can be
    rebuilt on its own: the stream depends only on (train_index, seed, curriculum, order), never on
    the order in which batches are asked for.

    order="prefix" instead takes the first curriculum_size(e) entries of one fixed order (seeded
    permutations from default_rng([seed]), concatenated as far as needed) and shuffles them with
    default_rng([seed, e]): every epoch re-sees the sequences of the epochs before it.

    `groups` (a language per training sequence, say) samples the groups equally: epoch e takes, from
    default_rng([seed, e]), the first m of a permutation of each group's sequences (m = the smallest
    group's size) and shuffles them together, so every group is 1/n of every epoch (PIXEL-M4's equal
    amounts per language) and a larger group shows other sequences each epoch.
    """

    def __init__(self, train_index: np.ndarray, seed: int, batch_size: int, curriculum: bool = True,
                 order: str = "fresh", groups: np.ndarray | None = None) -> None:
        """Order `train_index` (sequence indices) in batches of `batch_size`; `curriculum` False:
        every epoch is one full permutation of the training set; `order`: fresh or prefix; `groups`:
        one label per entry of train_index, sampled equally (one group: as if none)."""
        if order not in CURRICULUM_ORDERS:
            raise HotStartError(f"unknown curriculum order '{order}'; choose one of {', '.join(CURRICULUM_ORDERS)}")
        self._groups: list[np.ndarray] = []  # positions in train_index of each group, when there are several
        if groups is not None and len(np.unique(groups)) > 1:
            if curriculum:
                raise HotStartError("equal sampling across languages trains in plain epochs, not on the curriculum; "
                                    "pass --no-curriculum")
            self._groups = [np.flatnonzero(np.asarray(groups) == g) for g in np.unique(groups)]
        self.order = order
        self.train_index = np.asarray(train_index, dtype=np.int64)
        if len(self.train_index) == 0 or batch_size < 1 or seed < 0:
            raise HotStartError(f"cannot order {len(self.train_index)} training sequences in batches of "
                                f"{batch_size} with seed {seed}; use batch_size >= 1, seed >= 0 and a corpus "
                                "with training sequences")
        self.seed, self.batch_size, self.curriculum = seed, batch_size, curriculum
        self._starts = [0]  # first sample of epochs 0, 1, ... as far as computed
        self._orders: dict[int, np.ndarray] = {}  # the last two epochs' orders, for sequential access

    def epoch_size(self, epoch: int) -> int:
        """Samples in epoch `epoch`."""
        if self._groups:
            return len(self._groups) * min(len(g) for g in self._groups)
        return curriculum_size(epoch) if self.curriculum else len(self.train_index)

    def epoch_start(self, epoch: int) -> int:
        """Index in the stream of the first sample of epoch `epoch`."""
        while len(self._starts) <= epoch:
            self._starts.append(self._starts[-1] + self.epoch_size(len(self._starts) - 1))
        return self._starts[epoch]

    def epoch_of_sample(self, sample: int) -> int:
        """Epoch that sample number `sample` (0-based, in the stream) belongs to."""
        if not self.curriculum:
            return sample // self.epoch_size(0)
        while self._starts[-1] <= sample:
            self.epoch_start(len(self._starts))
        return bisect.bisect_right(self._starts, sample) - 1

    def _order(self, epoch: int) -> np.ndarray:
        """Training sequence indices of epoch `epoch`, in order."""
        if epoch not in self._orders:
            rng, n = np.random.default_rng([self.seed, epoch]), len(self.train_index)
            size = self.epoch_size(epoch)
            if self._groups:
                m = min(len(g) for g in self._groups)
                positions = np.concatenate([g[rng.permutation(len(g))[:m]] for g in self._groups])
                positions = positions[rng.permutation(len(positions))]
            elif self.order == "prefix":
                fixed = np.random.default_rng([self.seed])  # the same draws every epoch: one fixed order
                prefix = np.concatenate([fixed.permutation(n) for _ in range(-(-size // n))])[:size]
                positions = prefix[rng.permutation(size)]
            else:
                positions = np.concatenate([rng.permutation(n) for _ in range(-(-size // n))])[:size]
            self._orders = {e: o for e, o in self._orders.items() if e == epoch - 1}
            self._orders[epoch] = self.train_index[positions]
        return self._orders[epoch]

    def batch(self, step: int) -> tuple[np.ndarray, int]:
        """(sequence indices of batch `step`, epoch of its last sample); any step, in any order."""
        first, end = step * self.batch_size, (step + 1) * self.batch_size
        last_epoch = self.epoch_of_sample(end - 1)
        parts = []
        for epoch in range(self.epoch_of_sample(first), last_epoch + 1):
            start = self.epoch_start(epoch)
            parts.append(self._order(epoch)[max(first - start, 0): end - start])
        return np.concatenate(parts), last_epoch
