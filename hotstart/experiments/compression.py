"""How far can a line be squeezed before it can no longer be read? Characters carried per patch against the
character error rate of reading the line back, for each rendering strategy of Lotz et al. (2023), which PIXEL-M4
builds on (`hotstart sweep compression`; no model is trained).

For each language (Chinese from the built-in iNews corpus, English from the King James Bible), each strategy
(render/line.py `cell`: free running text, bigram, char, words), each patch size (the line's height) and each
font size (set through the line's margin), the same lines are rendered and read back:
- by the OCR engine (analysis/readback.py `ocr_line`: PP-OCRv4's Chinese and English recogniser through
  rapidocr-onnxruntime, offline), every strategy;
- by the glyph reader (analysis/readback.py `GlyphReader`: each patch read as the nearest drawn character), char
  cells only, the one strategy with one character per patch. Its candidates are the characters of the language's
  lines in the grid (our reading: the vocabulary of the text measured).

Our reading where the field leaves room: the character error rate (CER) is the edit distance from what is read to
the line, over the line's characters, pooled over the lines, both after NFKC and without spaces (the words strategy
draws no space, and the field's OCR precision does not count them either); characters per patch are the line's
characters other than spaces over its text patches (the end patch left out). Reading nothing scores a CER of 100%,
the floor beside every figure. The engine's own ceiling is its CER on the same lines drawn large and clean (free
cells, 32 px lines): where a setting is near it, the engine, not the squeezing, is the limit.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import random
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..data.corpus import BUILTIN, clean_text, read_documents
from ..data.prepared import Vocab
from ..errors import HotStartError
from ..render.line import CELLS, LineRenderConfig, LineRenderer, line_image
from ..training.checkpoint import atomic_write_bytes, read_json, write_json

LANGUAGES = {"zh": "inews", "en": "kjv"}
"""Language -> the built-in corpus its lines are cut from (kjv: pip install 'hotstart[languages]')."""
STRATEGIES = CELLS
CEILING = {"cell": "free", "patch": 32, "margin": 0.0625}
"""The OCR engine's ceiling: the same lines, drawn large and clean."""
READABLE_CER = 0.05
"""The report's squeeze limit: the most characters per patch at which a strategy still reads back within this CER."""


@dataclasses.dataclass(frozen=True)
class CompressionScale:
    """How much of the grid a scale measures."""

    about: str
    lines: int
    """Lines per language."""
    line_chars: int
    """Characters per line, about (English lines end at a word)."""
    patches: tuple[int, ...]
    """Patch sizes (the line's height, px)."""
    margins: tuple[float, ...]
    """Margins above and below the em box (LineRenderConfig.margin): each a font size at each patch size."""


SCALES = {
    "smoke": CompressionScale("checks the machinery: 3 lines per language, 16 px patches, one font size", 3, 24,
                              (16,), (0.0625,)),
    "cpu": CompressionScale("100 lines of about 32 characters per language; patches of 8, 12, 16 and 24 px, each at "
                            "three font sizes (margins of 1/16, 3/16 and 5/16 of the patch); minutes on 2 cores", 100, 32,
                            (8, 12, 16, 24), (0.0625, 0.1875, 0.3125)),
}


def settings(scale: CompressionScale, strategies: list[str] | None = None) -> list[dict[str, Any]]:
    """Every (language, strategy, patch, margin) the scale measures, ceilings first; `strategies` keeps those."""
    chosen = [s for s in STRATEGIES if not strategies or s in strategies]
    ceilings = [{"language": lang, "strategy": "ceiling", **CEILING} for lang in LANGUAGES]
    return ceilings + [{"language": lang, "strategy": s, "cell": s, "patch": p, "margin": m}
                       for lang in LANGUAGES for s in chosen for p in scale.patches for m in scale.margins]


def setting_key(setting: dict[str, Any]) -> str:
    return f"{setting['language']}-{setting['strategy']}-{setting['patch']}px-m{setting['margin']}"


def cut_lines(corpus: str, n: int, chars: int, seed: int = 0) -> list[str]:
    """`n` lines of about `chars` characters cut at random places from `corpus`, cleaned as `prepare` cleans it
    (NFKC, whitespace collapsed), whole words where it has spaces."""
    text = " ".join(clean_text(doc.text) for doc in read_documents(corpus))  # as `prepare` cleans it: NFKC
    rng = random.Random(seed)
    lines = []
    while len(lines) < n:
        start = rng.randrange(len(text) - 4 * chars)
        piece = text[start : start + 2 * chars]
        if " " in piece:  # from the first whole word, up to the word that reaches `chars`
            words = piece.split(" ")[1:-1]
            kept = []
            while words and len(" ".join(kept)) < chars:
                kept.append(words.pop(0))
            piece = " ".join(kept)
        else:
            piece = piece[:chars]
        if piece.strip():
            lines.append(piece.strip())
    return lines


def comparable(text: str) -> str:
    """NFKC, without spaces: what the CER compares."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(read: list[str], lines: list[str]) -> float:
    """Edits from what was read to each line, over the lines' characters, pooled (NFKC, spaces out)."""
    return sum(edit_distance(comparable(r), comparable(t)) for r, t in zip(read, lines)) / sum(len(comparable(t)) for t in lines)


def measure(setting: dict[str, Any], lines: list[str], engine, vocab: Vocab) -> dict[str, Any]:
    """One setting: its lines rendered, the characters each patch carries, and the CER of each reader."""
    from ..analysis.readback import GlyphReader, ocr_line

    cfg = LineRenderConfig(patch=setting["patch"], mode="grey", cell=setting["cell"], margin=setting["margin"],
                           max_patches=1024, edge="fit")
    batch = LineRenderer(cfg).render_batch(lines)
    if batch.truncated.any():  # 1,024 patches hold any line of the scales above
        raise HotStartError(f"{setting_key(setting)}: {int(batch.truncated.sum())} characters did not fit a line")
    texts = [batch.patches[b, : batch.lengths[b] - 1] for b in range(len(lines))]  # the end patch left out
    row = {**setting, "em_px": cfg.em_px, "lines": len(lines),
           "chars_per_patch": sum(len(comparable(t)) for t in lines) / sum(len(p) for p in texts),
           "missing": sum(batch.missing.values())}
    row["ocr_cer"] = cer([ocr_line(engine, line_image(p))[0] for p in texts], lines)
    row["glyph_cer"] = None
    if cfg.cell == "char":
        reader = GlyphReader(cfg, vocab)
        row["glyph_cer"] = cer([reader.text(reader.read(torch.from_numpy(p)).tolist()) for p in texts], lines)
    return row


def run_compression(out: str | Path, scale: str, strategies: list[str] | None = None, progress: bool = True,
                    command: str = "") -> list[dict[str, Any]]:
    """Measure every setting of `scale` not yet in OUT/compression.jsonl (rerunning resumes), write the plot."""
    if scale not in SCALES:
        raise HotStartError(f"the compression grid has no scale '{scale}'; choose {' or '.join(SCALES)}")
    unknown = [s for s in strategies or [] if s not in STRATEGIES]
    if unknown:
        raise HotStartError(f"--only {' '.join(unknown)}: not a strategy of the compression grid; choose from "
                            f"{', '.join(STRATEGIES)}")
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        raise HotStartError("the compression grid reads lines back with an OCR engine; pip install 'hotstart[ocr]'") from None
    chosen = SCALES[scale]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record_path, rows_path = out / "compression.json", out / "compression.jsonl"
    record = read_json(record_path, "compression record") if record_path.is_file() else {}
    if record and record.get("scale") != scale:
        raise HotStartError(f"{out} holds the compression grid at scale '{record.get('scale')}', not '{scale}'; "
                            "pass another --out or the same --scale")
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()] if rows_path.is_file() else []
    done = {setting_key(r) for r in rows}
    lines = {lang: cut_lines(corpus, chosen.lines, chosen.line_chars) for lang, corpus in LANGUAGES.items()}
    vocabs = {lang: Vocab.build(Counter("".join(comparable(t) for t in text)), 1) for lang, text in lines.items()}
    engine = RapidOCR()

    record = {"scale": scale, "about": chosen.about, "commands": sorted({*record.get("commands", []), command} - {""}),
              "ocr_engine": f"rapidocr-onnxruntime {importlib.metadata.version('rapidocr-onnxruntime')} (PP-OCRv4)",
              "corpora": {lang: f"{corpus} version {BUILTIN[corpus].version}" for lang, corpus in LANGUAGES.items()},
              "lines_per_language": chosen.lines, "line_chars": chosen.line_chars, "readable_cer": READABLE_CER}
    write_json(record_path, record)
    for setting in settings(chosen, strategies):
        key = setting_key(setting)
        if key in done:
            continue
        start = time.perf_counter()
        row = measure(setting, lines[setting["language"]], engine, vocabs[setting["language"]])
        row["seconds"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        with rows_path.open("a", encoding="utf-8") as f:  # one setting per line: a killed grid resumes after it
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if progress:
            glyph = f", glyph CER {100 * row['glyph_cer']:.1f}%" if row["glyph_cer"] is not None else ""
            print(f"{key}: {row['chars_per_patch']:.2f} characters per patch, OCR CER {100 * row['ocr_cer']:.1f}%{glyph} "
                  f"({row['seconds']} s)", flush=True)
    plot(rows, out / "compression.png")
    return rows


def is_compression_folder(path: Path) -> bool:
    """True for a folder written by `hotstart sweep compression` with a setting measured."""
    return (Path(path) / "compression.json").is_file() and (Path(path) / "compression.jsonl").is_file()


def read_rows(folder: Path) -> list[dict[str, Any]]:
    text = (Path(folder) / "compression.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


MARKERS = {"free": "o", "bigram": "s", "char": "^", "words": "D"}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """One panel per language: OCR CER against characters per patch, one colour per strategy, each point
    labelled with its patch and font size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    languages = [lang for lang in LANGUAGES if any(r["language"] == lang for r in rows)]
    if not languages:
        return
    fig, axes = plt.subplots(1, len(languages), figsize=(6.5 * len(languages), 4.6), squeeze=False)
    for ax, lang in zip(axes[0], languages):
        for strategy in STRATEGIES:
            points = sorted((r["chars_per_patch"], r["ocr_cer"], r["patch"], r["em_px"]) for r in rows
                            if r["language"] == lang and r["strategy"] == strategy)
            if not points:
                continue
            ax.scatter([p[0] for p in points], [100 * p[1] for p in points], marker=MARKERS[strategy], label=strategy)
            for x, y, patch, em in points:
                ax.annotate(f"{patch}/{em}", (x, 100 * y), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ceiling = [r for r in rows if r["language"] == lang and r["strategy"] == "ceiling"]
        if ceiling:
            ax.axhline(100 * ceiling[0]["ocr_cer"], color="grey", linestyle=":", label="engine's error on clean text (32 px, free)")
        ax.axhline(100, color="black", linewidth=0.8, label="floor: reading nothing")
        ax.axhline(100 * READABLE_CER, color="grey", linestyle="--", linewidth=0.8, label=f"{READABLE_CER:.0%} CER")
        ax.set_xscale("log")
        ax.set_xticks([0.8, 1, 1.5, 2, 3, 4, 6, 8], labels=["0.8", "1", "1.5", "2", "3", "4", "6", "8"])
        ax.minorticks_off()
        ax.set_xlabel("characters per patch (spaces not counted)")
        ax.set_ylabel("OCR character error rate (%)")
        ax.set_title(f"{lang}: labels are patch px / font px")
        ax.set_ylim(-2, 105)
        ax.legend(fontsize=7)
    fig.tight_layout()
    from io import BytesIO

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def compression_section(folder: Path, out: Path, prefix: str = "compression") -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows: every setting's characters per patch and CER, each strategy's squeeze limit; writes
    compression.png into `out`."""
    record = read_json(Path(folder) / "compression.json", "compression record")
    rows = read_rows(folder)
    plot(rows, Path(out) / f"{prefix}.png")
    pct = lambda value: "-" if value is None else f"{100 * value:.1f}"
    parts = [(f"Scale '{record['scale']}': {record.get('about', '')}. Commands: "
              + "; ".join(f"`{c}`" for c in record.get("commands", [])) + f". Reader: {record.get('ocr_engine')}; "
              "the glyph reader for char cells (hotstart/experiments/compression.py has our readings). Reading "
              "nothing scores a CER of 100%, the floor of every row. The glyph reader compares each cell with the "
              "renderer's own drawing of every candidate character, so it fails only where two characters draw "
              "alike: it measures what the pixels still tell apart, not what a reader could read; the OCR engine, "
              "trained on other text, measures legibility."), ""]
    for lang, corpus in LANGUAGES.items():
        mine = [r for r in rows if r["language"] == lang]
        if not mine:
            continue
        ceiling = next((r for r in mine if r["strategy"] == "ceiling"), None)
        parts.append(f"**{lang}** ({record.get('corpora', {}).get(lang, corpus)}, {mine[0]['lines']} lines)"
                     + (f"; the engine's own error on clean text (the same lines in free cells at 32 px, row `ceiling`): "
                        f"CER {pct(ceiling['ocr_cer'])}%. A setting near it is limited by the engine, not by the squeezing."
                        if ceiling else "."))
        limits = []
        for strategy in STRATEGIES:
            readable = [r for r in mine if r["strategy"] == strategy and r["ocr_cer"] <= READABLE_CER]
            measured = [r for r in mine if r["strategy"] == strategy]
            if measured:
                best = max(readable, key=lambda r: r["chars_per_patch"]) if readable else None
                limits.append(f"{strategy} " + (f"{best['chars_per_patch']:.2f} ({best['patch']} px, font {best['em_px']} px)"
                                                if best else "none"))
        parts.append(f"The most characters per patch still read within {READABLE_CER:.0%} CER by the OCR engine: "
                     + "; ".join(limits) + ".")
        parts += ["", "| strategy | patch px | font px | characters per patch | OCR CER % | glyph reader CER % |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(mine, key=lambda r: (r["strategy"] != "ceiling", STRATEGIES.index(r["strategy"])
                                             if r["strategy"] in STRATEGIES else -1, r["patch"], -r["em_px"])):
            parts.append(f"| {r['strategy']} | {r['patch']} | {r['em_px']} | {r['chars_per_patch']:.2f} | "
                         f"{pct(r['ocr_cer'])} | {pct(r['glyph_cer'])} |")
        parts.append("")
    parts.append(f"![compression against readability]({prefix}.png)")
    csv_rows = [{k: r.get(k) for k in ("language", "strategy", "patch", "em_px", "margin", "chars_per_patch", "ocr_cer",
                                       "glyph_cer", "lines", "missing")} for r in rows]
    return "\n".join(parts), csv_rows


def list_settings(scale: str, out: str | None) -> str:
    """The grid's settings, one per line, with 'measured' beside those already in OUT."""
    if scale not in SCALES:
        raise HotStartError(f"the compression grid has no scale '{scale}'; choose {' or '.join(SCALES)}")
    done = {setting_key(r) for r in read_rows(Path(out))} if out and is_compression_folder(Path(out)) else set()
    return "\n".join(f"{setting_key(s)}{'  measured' if setting_key(s) in done else ''}" for s in settings(SCALES[scale]))

