"""`hotstart sweep fonts` and `hotstart sweep robustness`: does a vision LM read a typeface it was not
trained on, does training on a mix of typefaces close the gap, and how do index and vision LMs take
noisy glyphs and look-alike characters?

    index       HotStart's index LM: it reads IDs, so no typeface touches it (one accuracy for all)
    vision      the vision LM (simp encoder, 8x8 glyphs) trained on the default font, Noto Sans CJK SC
    vision-mix  the same, each training glyph drawn at random in one of the scale's first `mixed`
                typefaces (--mix-font; the default font among them)

Every member trains like the sweep's `final` protocol at the same scale (decoder, budget, schedule,
seed), and is then evaluated on the same validation sequences with its glyphs drawn in each of the
scale's typefaces (`hotstart eval --font`: the trained weights, other pictures). The typefaces after
the first `mixed` are in no member's training: a typeface unseen by both vision members.

The cpu scale's typefaces besides the default come from Debian packages (fonts-noto-cjk,
fonts-arphic-ukai, fonts-wqy-zenhei); the smoke scale uses other faces of the default font's own
collection (Noto Sans CJK TC, JP, KR), so that it runs wherever HotStart is installed.

`robustness` shares the members, their runs and the folder: it trains what the fonts grid has not yet
trained, then evaluates each member, in the default font, with its input perturbed at every level of
ROBUSTNESS_LEVELS (render/perturb.py: pixel noise, stroke dropout, look-alike characters).

A grid folder holds data/, runs/fonts-MEMBER/ (each with typefaces.json: accuracy per typeface, and
robustness.json: accuracy per perturbation and level) and fonts.json; rerunning a command resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import HotStartError
from ..render.fonts import default_font, face_named, font_info
from ..render.glyph import GlyphRenderer, RenderConfig
from ..render.perturb import Perturbation
from ..training.checkpoint import read_json, write_json
from .formatting import percent
from .grid import budgeted_scale, check_members, open_member_grid, train_member
from .sweep import RunSpec, Scale

MEMBERS = ("index", "vision", "vision-mix")
ROBUSTNESS_LEVELS = {"noise": (0.1, 0.2, 0.4), "stroke_dropout": (0.1, 0.25, 0.5), "confusable_share": (0.05, 0.1, 0.2)}
"""Perturbation -> the levels each member is evaluated at (besides 0, the clean input)."""
PERTURBATION_NAMES = {"noise": "pixel noise (std)", "stroke_dropout": "stroke dropout (share of ink)",
                      "confusable_share": "look-alike characters (share of inputs)"}
EVALUATIONS = {"fonts": "typefaces.json", "robustness": "robustness.json"}
"""What each grid adds to a member's run folder."""
DEBIAN_FONTS = "apt install fonts-noto-cjk fonts-arphic-ukai fonts-wqy-zenhei"


@dataclass(frozen=True)
class Typeface:
    """A face of a font file, found by name."""

    name: str
    file: str | None
    """The font file; None is the default font's collection (noto-cjk-sans-otc)."""
    source: str
    """Where the file comes from."""


DEFAULT_FACE = Typeface("Noto Sans CJK SC", None, "noto-cjk-sans-otc (PyPI), the default font")


@dataclass(frozen=True)
class FontsScale:
    """How big the comparison is, and in which typefaces."""

    name: str
    sweep_scale: str
    """The sweep scale whose `final` protocol every member trains with."""
    typefaces: tuple[Typeface, ...]
    """Evaluated in every one; the first is the default font, which every vision member trains on."""
    mixed: int
    """vision-mix trains on the first `mixed` typefaces."""
    eval_sequences: int | None
    """Validation sequences of every evaluation (None: all)."""
    about: str
    train_samples: int | None = None
    """A smaller budget than the sweep scale's `final` one (None: the sweep scale's)."""

    def sweep(self) -> Scale:
        """The sweep scale every member trains at, with this scale's budget."""
        return budgeted_scale(self.sweep_scale, self.train_samples)


FONTS_SCALES = {
    "smoke": FontsScale("smoke", "smoke", (DEFAULT_FACE, *(Typeface(f"Noto Sans CJK {r}", None, "noto-cjk-sans-otc (PyPI)")
                                                          for r in ("TC", "JP", "KR"))),
                        mixed=3, eval_sequences=64, train_samples=512, about="checks the machinery on the default font's other faces; "
                                                          "the numbers mean nothing"),
    "cpu": FontsScale("cpu", "cpu", (
        DEFAULT_FACE,
        Typeface("Noto Serif CJK SC", "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", "fonts-noto-cjk (Debian)"),
        Typeface("AR PL UKai CN", "/usr/share/fonts/truetype/arphic/ukai.ttc", "fonts-arphic-ukai (Debian)"),
        Typeface("WenQuanYi Zen Hei", "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei (Debian)"),
    ), mixed=3, eval_sequences=2048, about="the sweep's cpu scale (small-cpu decoder, 24,576 sequences); a sans, "
                                          "a serif and a brush (kai) typeface mixed, a second sans unseen"),
}


def fonts_scale(name: str) -> FontsScale:
    """The named scale, or a one-line error."""
    if name not in FONTS_SCALES:
        raise HotStartError(f"the fonts grid has no scale '{name}'; choose one of {', '.join(FONTS_SCALES)}")
    return FONTS_SCALES[name]


def resolve(typeface: Typeface) -> tuple[str, int]:
    """(path, face) of a typeface, or a one-line error saying how to install it."""
    path = typeface.file or default_font()[0]
    if not Path(path).is_file():
        raise HotStartError(f"font {typeface.name} is not installed ({path}, from {typeface.source}); on Debian or "
                            f"Ubuntu: {DEBIAN_FONTS}")
    face = face_named(path, typeface.name)
    if face is None:
        raise HotStartError(f"font file {path} has no face named {typeface.name}; reinstall {typeface.source}")
    return path, face


def member_config(member: str, scale: FontsScale, data: str) -> Any:
    """The run config of `member`: the sweep's `final` protocol at the scale, vision-mix with its fonts."""
    if member not in MEMBERS:
        raise HotStartError(f"unknown member '{member}'; choose from {', '.join(MEMBERS)}")
    spec = RunSpec("final", "index" if member == "index" else "vision", res=8)
    cfg = spec.run_config(scale.sweep(), data)
    if member == "vision-mix":
        cfg.model.input.mix_fonts = ["{}#{}".format(*resolve(t)) for t in scale.typefaces[1 : scale.mixed]]
    return cfg


def _typeface_record(typeface: Typeface, vocab_chars: list[str]) -> dict[str, Any]:
    """A typeface as the record keeps it: its file, face, hash, source and how many characters of the
    vocabulary it lacks (drawn blank: the glyph renderer's default policy)."""
    path, face = resolve(typeface)
    renderer = GlyphRenderer(RenderConfig(font=path, face=face))
    info = font_info(path, face)
    return {"name": typeface.name, "path": path, "face": face, "sha256": info.sha256, "source": typeface.source,
            "lacks": sum(not renderer.has_glyph(ch) for ch in vocab_chars)}


def run_fonts(out: str | Path, scale_name: str = "cpu", data: str | None = None, members: list[str] | None = None,
              precision: str = "auto", device: str = "auto", progress: bool = True,
              command: str = "") -> list[dict[str, Any]]:
    """Train every member not yet done, then evaluate it in every typeface; one status row per member."""
    return _run_grid("fonts", out, scale_name, data, members, precision, device, progress, command)


def run_robustness(out: str | Path, scale_name: str = "cpu", data: str | None = None, members: list[str] | None = None,
                   precision: str = "auto", device: str = "auto", progress: bool = True,
                   command: str = "") -> list[dict[str, Any]]:
    """Train every member not yet done, then evaluate it with perturbed input; one status row per member."""
    return _run_grid("robustness", out, scale_name, data, members, precision, device, progress, command)


def _run_grid(grid: str, out: str | Path, scale_name: str, data: str | None, members: list[str] | None,
              precision: str, device: str, progress: bool, command: str) -> list[dict[str, Any]]:
    """The members trained (or resumed) in `out`, then evaluated as `grid` asks."""
    from ..training.evaluate import evaluate_run

    scale = fonts_scale(scale_name)
    chosen = check_members(members, MEMBERS)
    faces = [resolve(t) for t in scale.typefaces]  # every font present before anything trains
    sweep_scale = scale.sweep()
    opened = open_member_grid(out, "fonts", "fonts.json", scale.name, sweep_scale.seq_len, data, precision, device,
                              progress, command)
    opened.save(mixed=scale.mixed, about=scale.about, eval_sequences=scale.eval_sequences, sweep_scale=asdict(sweep_scale),
                typefaces=[_typeface_record(t, opened.corpus.vocab.chars) for t in scale.typefaces])
    statuses = []
    for member in chosen:
        run_dir = opened.out / "runs" / f"fonts-{member}"
        if (run_dir / "summary.json").is_file() and (run_dir / EVALUATIONS[grid]).is_file():
            statuses.append({"member": member, "status": "done before"})
            continue
        cfg = member_config(member, scale, str(opened.corpus_dir))
        cfg.train.precision, cfg.train.device = opened.precision, device
        train_member(cfg, run_dir, progress)
        evaluate = partial(evaluate_run, run_dir, checkpoint="best", sequences=scale.eval_sequences, device=device,
                           precision=opened.precision, progress=False)
        if grid == "robustness":
            write_json(run_dir / "robustness.json", _robustness(evaluate))
            statuses.append({"member": member, "status": "done"})
            continue
        results = []
        for typeface, (path, face) in zip(scale.typefaces, faces):
            # an index LM reads no glyphs: evaluated once, the same in every typeface
            if member == "index" and results:
                results.append({**results[0], "typeface": typeface.name})
                continue
            overrides = None if member == "index" else {"font": path, "face": face}
            metrics = evaluate(render_overrides=overrides)
            results.append({"typeface": typeface.name, "val_acc": metrics["val_acc"], "val_loss": metrics["val_loss"],
                            "sequences": metrics["sequences"]})
        write_json(run_dir / "typefaces.json", {"checkpoint": "best", "results": results,
                                                "trained_on": [t.name for t in scale.typefaces[: scale.mixed if member == "vision-mix" else 1]]
                                                if member != "index" else []})
        statuses.append({"member": member, "status": "done"})
    return statuses


def _robustness(evaluate: Any) -> dict[str, Any]:
    """A member's accuracy on clean input and at every perturbation level (the default font)."""
    clean = evaluate()
    results = []
    for kind, levels in ROBUSTNESS_LEVELS.items():
        for level in levels:
            metrics = evaluate(perturbation=Perturbation(**{kind: level}))
            results.append({"perturbation": kind, "level": level, "val_acc": metrics["val_acc"],
                            "val_loss": metrics["val_loss"], **({"swapped": metrics["swapped"]} if "swapped" in metrics else {})})
    return {"checkpoint": "best", "sequences": clean["sequences"], "clean_val_acc": clean["val_acc"],
            "clean_val_loss": clean["val_loss"], "results": results}


def is_robustness_folder(path: Path) -> bool:
    """True for a fonts grid folder where `hotstart sweep robustness` evaluated a member."""
    return is_fonts_folder(path) and any(Path(path).glob("runs/fonts-*/robustness.json"))


def robustness_section(folder: Path, out: Path, prefix: str = "robustness") -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows: accuracy per member, perturbation and level; writes robustness.png."""
    record = read_json(folder / "fonts.json", "grid record")
    rows = []
    for member in MEMBERS:
        path = folder / "runs" / f"fonts-{member}" / "robustness.json"
        if not path.is_file():
            continue
        evaluated = read_json(path, "accuracy under perturbation")
        for kind in ROBUSTNESS_LEVELS:
            rows.append({"member": member, "perturbation": kind, "level": 0.0, "val_acc": evaluated["clean_val_acc"],
                         "val_loss": evaluated["clean_val_loss"]})
            rows += [{"member": member, **{k: r.get(k) for k in ("perturbation", "level", "val_acc", "val_loss", "swapped")}}
                     for r in evaluated["results"] if r["perturbation"] == kind]
    lines = [(f"The fonts grid's members (scale '{record['scale']}'), each evaluated in the default font (checkpoint "
              f"best, the first {record.get('eval_sequences') or 'all'} validation sequences) with its input perturbed "
              "(render/perturb.py; our reading): Gaussian pixel noise added to every glyph and clipped to [0, 1], "
              "stroke dropout blanking each inked pixel with the given probability, and a share of the input "
              "characters swapped for their look-alike (the other character nearest by cosine at 32x32 in the same "
              "font) while the targets stay. Noise and dropout touch glyphs only: an index model reads the same IDs. "
              "One draw per level (seed 0). Next-character accuracy (%):"),
             "",
             "| member | perturbation | " + " | ".join(f"level {i}" for i in range(4)) + " |",
             "|---|---|" + "---:|" * 4]
    for member in MEMBERS:
        for kind in ROBUSTNESS_LEVELS:
            cells = [r for r in rows if r["member"] == member and r["perturbation"] == kind]
            if cells:
                lines.append(f"| {member} | {PERTURBATION_NAMES[kind]} | " +
                             " | ".join(f"{percent(r['val_acc'])} ({r['level']:g})" for r in cells) + " |")
    if rows:
        _robustness_plot(rows, out / f"{prefix}.png")
        lines += ["", f"![accuracy under perturbation]({prefix}.png)"]
    return "\n".join(lines), rows


def _robustness_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """A panel per perturbation: accuracy against level, a line per member."""
    from ..plot import plot_line_panels

    panels = {PERTURBATION_NAMES[kind]: {member: [(r["level"], 100 * r["val_acc"]) for r in rows
                                                  if r["member"] == member and r["perturbation"] == kind]
                                         for member in MEMBERS} for kind in ROBUSTNESS_LEVELS}
    plot_line_panels(panels, path, "next-character accuracy (%)")


def is_fonts_folder(path: Path) -> bool:
    """True for a folder written by `hotstart sweep fonts`."""
    return (Path(path) / "fonts.json").is_file()


def fonts_section(folder: Path, out: Path, prefix: str = "fonts") -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows of one fonts grid folder (accuracy per member and typeface); writes fonts.png."""
    record = read_json(folder / "fonts.json", "grid record")
    names = [t["name"] for t in record.get("typefaces", [])]
    rows = []
    for member in MEMBERS:
        path = folder / "runs" / f"fonts-{member}" / "typefaces.json"
        if not path.is_file():
            continue
        evaluated = read_json(path, "accuracy per typeface")
        for result in evaluated["results"]:
            rows.append({"member": member, "typeface": result["typeface"], "val_acc": result["val_acc"],
                         "val_loss": result["val_loss"], "sequences": result["sequences"],
                         "trained_on_it": result["typeface"] in evaluated["trained_on"]})
    settings = record.get("sweep_scale", {})
    lines = [(f"Scale '{record['scale']}': {record.get('about', '')}. Every member trains like the sweep's `final` "
              f"protocol ({settings.get('size')} decoder, {settings.get('final_samples') or 0:,} sequences, seed 0, one seed), "
              f"in {record.get('precision')}; each is then evaluated (checkpoint best, the first "
              f"{record.get('eval_sequences') or 'all'} validation sequences) with its glyphs drawn in every typeface. "
              "Commands: " + "; ".join(f"`{c}`" for c in record.get("commands", [])) + "."),
             "",
             "Typefaces: " + "; ".join(f"{t['name']} ({t['source']}, face {t['face']}, sha256 {t['sha256'][:12]}; lacks "
                                       f"{t['lacks']:,} of the vocabulary's characters, drawn blank)"
                                       for t in record.get("typefaces", [])) + ".",
             "",
             "Next-character accuracy (%); * marks a typeface the member trained on:",
             "",
             "| member | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for member in MEMBERS:
        cells = {r["typeface"]: r for r in rows if r["member"] == member}
        if cells:
            lines.append(f"| {member} | " + " | ".join(
                f"{percent(cells[n]['val_acc'])}{' *' if cells[n]['trained_on_it'] else ''}" if n in cells else "" for n in names) + " |")
    if rows:
        _plot(rows, names, out / f"{prefix}.png")
        lines += ["", f"![accuracy per typeface]({prefix}.png)"]
    return "\n".join(lines), rows


def _plot(rows: list[dict[str, Any]], names: list[str], path: Path) -> None:
    """Grouped bars: a group per typeface, a bar per member."""
    from ..plot import plot_grouped_bars

    bars = {}
    for member in MEMBERS:
        acc = {r["typeface"]: r["val_acc"] for r in rows if r["member"] == member}
        if acc:
            bars[member] = [100 * acc.get(n, 0) for n in names]
    plot_grouped_bars(names, bars, path, "next-character accuracy (%)")
