"""`hotstart sweep attribution`: the paper's "toast centre", measured. Which pixels of a glyph does a
vision LM read, and what is left when only the centre, or only the border, is drawn?

    vision-4x4, vision-8x8, vision-20x20   the vision LM (simp encoder) at three of the paper's resolutions

Every member trains like the sweep's `final` protocol at the same scale, then:
- its next-character prediction is attributed to the pixels of the glyph just read, with Captum's
  integrated gradients and occlusion, at the same validation positions (analysis/attribution.py);
- the mean share map per pixel position gives the attribution mass in the centre region (about 30%
  of the ink box; render/glyph.py: centre_region), beside the share of ink there (neither method gives
  a blank pixel anything, so where the ink lies is the reference) and the share of pixels the region
  holds (what a uniform map would give);
- it is evaluated with only the centre drawn and with only the border drawn (`hotstart eval --keep`).

The paper's claim, as the summary in shared papers words it: "Attention is concentrated on central
strokes (about 30% of pixels carry most discriminative power)"; our rule: by both methods, the centre
region holds more than half the attribution mass, and more than the ink's own share there.

A grid folder holds data/, runs/attribution-MEMBER/ (each with pixels.json) and attribution.json;
rerunning the command resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..analysis.attribution import METHODS, AttributionConfig
from ..errors import HotStartError
from ..render.glyph import centre_region
from ..training.checkpoint import read_json, write_json
from .formatting import percent
from .grid import budgeted_scale, check_members, open_member_grid, train_member
from .sweep import RunSpec, Scale

MEMBERS = ("vision-4x4", "vision-8x8", "vision-20x20")
RESOLUTIONS = {"vision-4x4": 4, "vision-8x8": 8, "vision-20x20": 20}
KEPT = ("all", "centre", "border")
"""What each member is evaluated with: every pixel, the centre region only, the border only."""
METHOD_NAMES = {"integrated_gradients": "integrated gradients", "occlusion": "occlusion"}
CLAIM = 0.5
"""The paper's "most" discriminative power, as our rule reads it: more than half the attribution mass."""


@dataclass(frozen=True)
class AttributionScale:
    """How big the measurement is."""

    name: str
    sweep_scale: str
    """The sweep scale whose `final` protocol every member trains with."""
    eval_sequences: int | None
    """Validation sequences of the masked evaluations and of the positions' draw (None: all)."""
    attribution: AttributionConfig
    about: str
    train_samples: int | None = None
    """A smaller budget than the sweep scale's `final` one (None: the sweep scale's)."""

    def sweep(self) -> Scale:
        """The sweep scale every member trains at, with this scale's budget."""
        return budgeted_scale(self.sweep_scale, self.train_samples)


ATTRIBUTION_SCALES = {
    "smoke": AttributionScale("smoke", "smoke", 64, AttributionConfig(positions=16, context=16, steps=8),
                              "checks the machinery; the numbers mean nothing", train_samples=512),
    "cpu": AttributionScale("cpu", "cpu", 2048, AttributionConfig(positions=512, context=32, steps=32),
                            "the sweep's cpu scale (small-cpu decoder, 24,576 sequences)"),
}


def attribution_scale(name: str) -> AttributionScale:
    """The named scale, or a one-line error."""
    if name not in ATTRIBUTION_SCALES:
        raise HotStartError(f"the attribution grid has no scale '{name}'; choose one of {', '.join(ATTRIBUTION_SCALES)}")
    return ATTRIBUTION_SCALES[name]


def run_attribution(out: str | Path, scale_name: str = "cpu", data: str | None = None, members: list[str] | None = None,
                    precision: str = "auto", device: str = "auto", progress: bool = True,
                    command: str = "") -> list[dict[str, Any]]:
    """Train every member not yet done, then attribute and evaluate it; one status row per member."""
    from ..analysis.attribution import captum_methods

    scale = attribution_scale(scale_name)
    chosen = check_members(members, MEMBERS)
    captum_methods()  # missing: say so now, not after hours of training
    sweep_scale = scale.sweep()
    grid = open_member_grid(out, "attribution", "attribution.json", scale.name, sweep_scale.seq_len, data, precision,
                            device, progress, command)
    if grid.corpus.seq_len <= scale.attribution.context:
        raise HotStartError(f"the attribution grid reads {scale.attribution.context} characters of context, but the corpus "
                            f"at {grid.corpus_dir} has sequences of {grid.corpus.seq_len}; prepare one with --seq-len "
                            f"{sweep_scale.seq_len}, or leave out --data")
    from ..training.evaluate import most_frequent_accuracy

    index = grid.corpus.val_index if scale.eval_sequences is None else grid.corpus.val_index[: scale.eval_sequences]
    grid.save(about=scale.about, eval_sequences=scale.eval_sequences, attribution=asdict(scale.attribution),
              sweep_scale=asdict(sweep_scale), most_frequent_accuracy=most_frequent_accuracy(grid.corpus, index))
    statuses = []
    for member in chosen:
        run_dir = grid.out / "runs" / f"attribution-{member}"
        if (run_dir / "summary.json").is_file() and (run_dir / "pixels.json").is_file():
            statuses.append({"member": member, "status": "done before"})
            continue
        cfg = RunSpec("final", "vision", res=RESOLUTIONS[member]).run_config(sweep_scale, str(grid.corpus_dir))
        cfg.train.precision, cfg.train.device = grid.precision, device
        train_member(cfg, run_dir, progress)
        write_json(run_dir / "pixels.json", measure(run_dir, scale, grid.precision, device))
        statuses.append({"member": member, "status": "done"})
    return statuses


def measure(run_dir: Path, scale: AttributionScale, precision: str, device: str) -> dict[str, Any]:
    """A trained vision run's attribution maps (ink, each method), their centre and top-30% mass, and its
    accuracy with every pixel, the centre only and the border only."""
    import torch

    from ..analysis.attribution import (
        attribute,
        sample_positions,
        share_maps,
        summarise,
    )
    from ..training.evaluate import evaluate_run
    from ..training.precision import resolve
    from ..training.run import load_run

    run = load_run(run_dir, checkpoint="best", progress=False)
    render = run.config.model.input.render
    run.model.to(resolve(device, precision).device)  # attribution itself runs in fp32, on that device
    index = run.corpus.val_index if scale.eval_sequences is None else run.corpus.val_index[: scale.eval_sequences]
    glyphs = run.model.input.glyphs.cpu()
    windows, targets = sample_positions(run.corpus.sequences(index), glyphs, scale.attribution)
    centre = centre_region(render)
    result: dict[str, Any] = {
        "checkpoint": "best", "res": render.res, "ink_px": render.ink_px, "margin_px": render.margin_px,
        "centre_region": centre.astype(int).tolist(), "centre_pixels_share": float(centre.sum() / render.ink_px ** 2),
        "settings": asdict(scale.attribution),
        "ink": summarise(share_maps(glyphs[windows[:, -1]]), centre, render.ink_px),
    }
    for method in METHODS:
        values, checks = attribute(run.model, windows, targets, scale.attribution, method)
        result[method] = {**summarise(share_maps(values), centre, render.ink_px), **checks}
    with torch.no_grad():
        result["accuracy"] = {}
        for kept in KEPT:
            metrics = evaluate_run(run_dir, checkpoint="best", sequences=scale.eval_sequences, device=device,
                                   precision=precision, progress=False,
                                   render_overrides=None if kept == "all" else {"keep": kept})
            result["accuracy"][kept] = {"val_acc": metrics["val_acc"], "val_loss": metrics["val_loss"],
                                        "sequences": metrics["sequences"]}
    return result


def is_attribution_folder(path: Path) -> bool:
    """True for a folder written by `hotstart sweep attribution` with a member measured."""
    return (Path(path) / "attribution.json").is_file() and any(Path(path).glob("runs/attribution-*/pixels.json"))


def attribution_section(folder: Path, out: Path, prefix: str = "attribution") -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows: centre mass per member and method, masked accuracy; writes attribution.png."""
    record = read_json(folder / "attribution.json", "grid record")
    measured = {m: read_json(p, "attribution") for m in MEMBERS
                if (p := folder / "runs" / f"attribution-{m}" / "pixels.json").is_file()}
    settings, sweep = record.get("attribution", {}), record.get("sweep_scale", {})
    drawn_from = f"{record['eval_sequences']:,}" if record.get("eval_sequences") else "all"
    rows = []
    for member, result in measured.items():
        row = {"member": member, "res": result["res"], "centre_pixels_share": result["centre_pixels_share"],
               "ink_in_centre": result["ink"]["in_centre"], "ink_top30": result["ink"]["top30"]}
        for method in METHODS:
            row[f"{method}_in_centre"] = result[method]["in_centre"]
            row[f"{method}_top30"] = result[method]["top30"]
        row["ig_completeness_gap"] = result["integrated_gradients"].get("completeness_gap")
        row.update({f"acc_{kept}": result["accuracy"][kept]["val_acc"] for kept in KEPT})
        row["positions"] = result["integrated_gradients"]["positions"]
        rows.append(row)
    lines = [
        (f"Scale '{record['scale']}': {record.get('about', '')}. Every member trains like the sweep's `final` protocol "
         f"({sweep.get('size')} decoder, {sweep.get('final_samples') or 0:,} sequences, seed 0, one seed), in "
         f"{record.get('precision')}. Commands: " + "; ".join(f"`{c}`" for c in record.get("commands", [])) + "."),
        "",
        (f"At {rows[0]['positions'] if rows else settings.get('positions')} validation positions drawn at random (from the first "
         f"{drawn_from} sequences; each reading an inked glyph after {settings.get('context', 0) - 1} "
         "characters of context), the log-probability of the true next character is attributed to the pixels of the "
         f"glyph just read (analysis/attribution.py; our reading): Captum's integrated gradients from a blank glyph "
         f"({settings.get('steps')} steps) and occlusion (blanking one pixel at a time). Each "
         "position's |attribution| is made a share of its total, then averaged per pixel position. The centre is the "
         "whole rings of the ink box nearest its middle closest to 30% of it (render/glyph.py: centre_region). A "
         "blank pixel gets no attribution by either method, so only inked pixels hold any, and the ink's own share in "
         "the centre is the reference: attribution more central than the ink means the model leans on central strokes."),
        "",
        ("The paper's claim (from its summary): central strokes, about 30% of the pixels, carry most of the "
         f"discriminative power. Our rule: by both methods, the centre region holds more than {CLAIM:.0%} of the "
         "attribution mass, and more than the ink's own share there. "
         "Columns (%): the share of the ink box the centre region is; the share of ink in it; the share of "
         "attribution in it; the mass each position's own top 30% of pixels holds; next-character accuracy (checkpoint "
         "best) with every pixel drawn, with the centre only (`--keep centre`) and the border only (`--keep border`)"
         + (f"; on the same sequences, always predicting the most frequent character scores "
            f"{percent(record['most_frequent_accuracy'])}%." if "most_frequent_accuracy" in record else ".")),
        "",
        ("| member | centre region | ink in centre | IG in centre | occlusion in centre | IG top 30% | ink top 30% | "
         "verdict | acc all | acc centre only | acc border only |"),
        "|---|" + "---:|" * 6 + "---|" + "---:|" * 3,
    ]
    for row in rows:
        lines.append(f"| {row['member']} | {percent(row['centre_pixels_share'])} | {percent(row['ink_in_centre'])} | "
                     f"{percent(row['integrated_gradients_in_centre'])} | {percent(row['occlusion_in_centre'])} | "
                     f"{percent(row['integrated_gradients_top30'])} | {percent(row['ink_top30'])} | {verdict(row)} | "
                     f"{percent(row['acc_all'])} | {percent(row['acc_centre'])} | {percent(row['acc_border'])} |")
    if rows:
        gaps = ", ".join(f"{r['member']} {percent(r['ig_completeness_gap'])}%" for r in rows)
        lines += ["", (f"Integrated gradients' completeness gap (|sum of attributions - score change| over the mean "
                       f"|score change|, lower is better): {gaps}.")]
        _heat_maps(measured, out / f"{prefix}.png")
        lines += ["", f"![attribution per pixel position]({prefix}.png)"]
    return "\n".join(lines), rows


def verdict(row: dict[str, Any]) -> str:
    """The rule for the toast centre on one member's row: by both methods, more than CLAIM of the
    attribution in the centre, and more than the ink's own share there."""
    shares = [row[f"{method}_in_centre"] for method in METHODS]
    if all(share > CLAIM and share > row["ink_in_centre"] for share in shares):
        return "holds (both methods)"
    if any(share > CLAIM and share > row["ink_in_centre"] for share in shares):
        return "one method only"
    if any(share > CLAIM for share in shares):
        return "not beyond the ink's own share"
    return "does not hold"


def _heat_maps(measured: dict[str, dict[str, Any]], path: Path) -> None:
    """A row per resolution: the mean share of ink, of integrated gradients and of occlusion per pixel,
    the centre region outlined."""
    from ..plot import plot_heat_maps

    panels = [("ink", "ink")] + [(m, METHOD_NAMES[m]) for m in METHODS]
    plot_heat_maps([[(f"{member}: {title}\n{100 * result[key]['in_centre']:.1f}% in centre", result[key]["map"],
                      result["centre_region"]) for key, title in panels] for member, result in measured.items()], path)
