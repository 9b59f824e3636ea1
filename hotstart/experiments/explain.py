"""What the hot start needs: the `explain` grid's candidate causes, each decided by the hot-start rule.

One row per candidate setting (sweep.grid_explain): the paper's numbers it is compared with, our
accuracies of vision and index under that setting at 4,096 and 8,192 samples, the lead, and the
verdict of the same rule RQ2 uses (verdicts.hot_lead: vision ahead by > 1 pp and > 2 sd with a ratio
of at least 1.5 at one of the paper's points). The rows are ranked by the lead at 8,192 samples, so
the table ends in either a setting where the hot start appears or a measured ranking of the ones
that came closest. A setting that applies to index too (lr, span, curriculum, tied head) is compared
with index under the same setting; the others with index in the paper's setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plot import plot_series
from .paper import PAPER_DECODER
from .runs import Run, Selector, acc_at, acc_stats
from .verdicts import hot_lead, tried_candidates

WINDOW_POINTS = (4096, 8192)
"""Where the table reads both models (evaluation points of every scale's hot window)."""

PAPER_8 = "8x8 12.34 vs index 5.84 at 8,200 (THUCNews)"
PAPER_ORIG = PAPER_8 + "; orig 8.88 vs 5.30 at 8k (zhwp)"

# (label, index settings, vision settings, the paper's numbers it answers to); None: the paper's setting
CANDIDATES: list[tuple[str, dict[str, Any] | None, dict[str, Any], str]] = [
    ("the paper's setting (reference)", None, {}, PAPER_8),
    ("1. orig encoder (ResNet)", None, {"encoder": "orig"}, PAPER_ORIG),
    ("1. orig without the output LayerNorm", None, {"encoder": "orig", "output_norm": "none"}, PAPER_ORIG),
    ("2. orig with BatchNorm", None, {"encoder": "orig", "encoder_norm": "batch"}, PAPER_ORIG),
    ("2. orig without normalisation", None, {"encoder": "orig", "encoder_norm": "none"}, PAPER_ORIG),
    ("3. simp at the paper's size", None, {"encoder_size": "paper"}, PAPER_8),
    ("3. opt at the paper's size", None, {"encoder": "opt", "encoder_size": "paper"}, PAPER_8),
    ("3. orig at the paper's size", None, {"encoder": "orig", "encoder_size": "paper"}, PAPER_ORIG),
    ("3. 40x40, not squeezed to an 8x8 grid", None, {"res": 40, "pool": 0, "patch": 1},
     "40x40 13.06 vs index 4.30 at 4,096"),
    ("4. OneCycle from 2e-4", {"onecycle_div": 7.5}, {"onecycle_div": 7.5}, PAPER_8),
    ("4. OneCycle from 2e-4 over 2M samples", {"onecycle_div": 7.5, "span": 2_000_000},
     {"onecycle_div": 7.5, "span": 2_000_000}, PAPER_8),
    ("5. prefix curriculum", {"curriculum": "prefix"}, {"curriculum": "prefix"}, PAPER_8),
    ("6. tied head", {"tie_head": True}, {"tie_head": True}, PAPER_8),
    ("7. inputs at the index table's length", None, {"input_scale": "index-init"}, PAPER_8),
    ("7. each pixel position standardised", None, {"pixel_norm": "position"}, PAPER_8),
    ("7. inputs centred over the vocabulary", None, {"center": True}, PAPER_8),
    ("8. orig at the paper's decoder (gpt2-small)", {"size": "gpt2-small"}, {"encoder": "orig", "size": "gpt2-small"},
     PAPER_ORIG),
    ("8. 40x40, not squeezed, at gpt2-small", {"size": "gpt2-small"}, {"res": 40, "pool": 0, "patch": 1, "size": "gpt2-small"},
     "40x40 13.06 vs index 4.30 at 4,096"),
]


def _pct(mean: float | None, sd: float | None, n: int) -> str:
    """'12.34' or '12.34 ± 0.10' (several seeds), or '-' where not reached."""
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * sd:.2f}" if n > 1 and sd is not None else "")


def candidate_rows(select: Selector) -> list[dict[str, Any]]:
    """One row per candidate that has both runs: accuracies, leads, verdict; ranked by the lead at 8,192."""
    rows = []
    for label, index_axes, vision_axes, paper in CANDIDATES:
        index = select("hot", "index", **(index_axes or {}))
        vision = select("hot", "vision", **vision_axes)
        if not index or not vision:
            rows.append({"candidate": label, "reference": index_axes is None and not vision_axes, "paper": paper, "verdict": "not run yet", "vision_seeds": 0, "index_seeds": 0,
                         "seeds": "none"})
            continue
        nv, ni = _evaluated(vision), _evaluated(index)
        row: dict[str, Any] = {"candidate": label, "reference": index_axes is None and not vision_axes, "paper": paper, "vision_seeds": nv, "index_seeds": ni,
                               "seeds": (f"{nv} seed{'s' * (nv != 1)} each" if nv == ni
                                         else f"{nv} seed{'s' * (nv != 1)} of vision, {ni} of index"),
                               "index_runs": " ".join(r.name for r in index),
                               "vision_runs": " ".join(r.name for r in vision)}
        for samples in WINDOW_POINTS:
            (i, isd, ni, _), (v, vsd, nv, _) = acc_stats(index, samples), acc_stats(vision, samples)
            row[f"index_{samples}"], row[f"vision_{samples}"] = _pct(i, isd, ni), _pct(v, vsd, nv)
            row[f"lead_{samples}"] = round(100 * (v - i), 2) if i is not None and v is not None else None
        found, shown = hot_lead(index, vision)
        # no summary.json yet: still training, or stopped with the session; later points may still show a lead
        unfinished = [r for r in index + vision if r.summary is None]
        progress = "unfinished: " + "; ".join(_progress(r) for r in unfinished)
        row["unfinished"] = bool(unfinished)
        row["verdict"] = _verdict(found, bool(shown), progress if unfinished else "")
        rows.append(row)
    ranked = sorted((r for r in rows if r.get("lead_8192") is not None), key=lambda r: -r["lead_8192"])
    return ranked + [r for r in rows if r.get("lead_8192") is None]


def _verdict(found: list[int], measured: bool, progress: str) -> str:
    """The rule's verdict so far; `progress` ('unfinished: ...') is set while a run of the row still trains."""
    if found:
        return "hot start at " + ", ".join(f"{s:,}" for s in found) + (f" ({progress})" if progress else "")
    if not measured:  # no point of the rule reached yet
        return progress or "not measured (window too short)"
    return f"no hot start so far ({progress})" if progress else "no hot start"


def _evaluated(runs: list[Run]) -> int:
    """How many of the runs (seeds) have been evaluated after some training: a seed that has only just
    started adds nothing to the means yet, so it is not counted."""
    return sum(any(row["samples"] > 0 for row in run.rows) for run in runs)


def _reached(run: Run) -> str:
    """How far a run got: '4,096 of 10,240' (the samples of its last evaluation, of its budget)."""
    target = run.config["train"].get("max_samples")
    return f"{run.rows[-1]['samples']:,}" + (f" of {target:,}" if target else "")


def _progress(run: Run) -> str:
    """How far an unfinished run got and what it cost: 'vision at 4,096 of 10,240 samples, 53 min'."""
    return f"{run.axes['kind']} at {_reached(run)} samples, {run.rows[-1]['wall_s'] / 60:.0f} min"


def explain_section(select: Selector, out: Path) -> tuple[str, list[dict[str, Any]]]:
    """The report's "What the hot start needs" section (markdown) and its rows; draws explain.png."""
    rows = candidate_rows(select)
    measured = [r for r in rows if r.get("lead_8192") is not None]
    if len(measured) < 2:
        return ("Not run yet: `hotstart sweep explain --scale cpu --out DIR` trains the candidates, each alone "
                "over the hot-start window."), rows
    lines = [("Each candidate cause of the missing hot start, alone, over the hot-start window; ranked by vision's lead "
             "over index at 8,192 samples (pp). Rule (as RQ2): a hot start where vision leads by > 1 pp and > 2 sd "
             "with a ratio >= 1.5 at one of the paper's points (4,096 / 6,152 / 8,200 / 10,248). Settings that apply "
             "to index too are compared with index under the same setting."), "",
             "| candidate | paper | seeds (vision / index) | index 4,096 | vision 4,096 | index 8,192 | vision 8,192 | lead 8,192 (pp) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lead = f"{r['lead_8192']:+.2f}" if r.get("lead_8192") is not None else "-"
        seeds = f"{r['vision_seeds']} / {r['index_seeds']}" if r["vision_seeds"] or r["index_seeds"] else "-"
        lines.append(f"| {r['candidate']} | {r['paper']} | {seeds} | {r.get('index_4096', '-')} | "
                     f"{r.get('vision_4096', '-')} | {r.get('index_8192', '-')} | {r.get('vision_8192', '-')} | {lead} | "
                     f"**{r['verdict']}** |")
    held = [r["candidate"] for r in rows if r["verdict"].startswith("hot start")]  # an unfinished run's too
    best = measured[0]
    missing = sum(r["verdict"] == "not run yet" for r in rows)
    unfinished = sum(r.get("unfinished", False) for r in rows)
    so_far = (f" ({len(rows) - missing - unfinished} of {len(rows)} rows run so far"
              + (f", {unfinished} more unfinished" if unfinished else "") + ")") if missing or unfinished else ""
    tried = tried_candidates(rows)
    lines += ["", (f"The hot start appears with: {'; '.join(held)}{so_far}: {len(held)} of the {tried} candidate settings "
                   "tried pass the rule, so a pass may be luck among many tries; the controls below test it." if held else
                   f"No candidate produced a hot start{so_far}. Closest: {best['candidate']} ({best['lead_8192']:+.2f} "
                   f"pp at 8,192 samples; the paper's lead at 8,200 was +6.50 pp).")]
    _lead_plot(select, out / "explain.png")
    lines += ["", "![what the hot start needs](explain.png)"]
    lines += paper_decoder_table(select)
    return "\n".join(lines), rows


def paper_decoder_table(select: Selector) -> list[str]:
    """Every evaluation of the hot-window runs at the paper's decoder, how far each got and what it cost.

    Those runs take hours each on a CPU, so some are reported unfinished; at the `paper` scale every run
    has that decoder and the main table already holds them (empty list).
    """
    runs = [r for r in select.runs if r.axes["protocol"] == "hot" and r.axes["size"] == PAPER_DECODER]
    if not runs or select.base_size == PAPER_DECODER:
        return []
    points = sorted({row["samples"] for r in runs for row in r.rows if row["samples"] > 0})
    lines = ["", (f"Runs at the paper's decoder ({PAPER_DECODER}), accuracy (%) at every evaluation; wall time "
                  "includes the evaluations, samples/s is over the whole run:"), "",
             "| run | input | reached | " + " | ".join(f"{p:,}" for p in points) + " | wall time | samples/s |",
             "|---|---|---|" + "---:|" * len(points) + "---:|---:|"]
    for r in sorted(runs, key=lambda r: r.name):
        last = r.rows[-1]
        reached = _reached(r) + ("" if r.summary else " (unfinished)")
        accs = [acc_at(r.rows, p) for p in points]
        cells = [f"{100 * a:.2f}" if a is not None and not interpolated else "-" for a, interpolated in accs]
        what = "index" if r.axes["kind"] == "index" else f"{r.axes['encoder']} {r.axes['res']}x{r.axes['res']}"
        speed = f"{last['samples'] / last['wall_s']:.2f}" if last["wall_s"] else "-"
        lines.append(f"| {r.name} | {what} | {reached} | " + " | ".join(cells) +
                     f" | {last['wall_s'] / 3600:.2f} h | {speed} |")
    index = [r for r in runs if r.axes["kind"] == "index"]
    for r in sorted((r for r in runs if r.axes["kind"] == "vision"), key=lambda r: r.name):
        # each seed against index of the same seed (same data order); index's seeds pooled where none matches
        paired = [i for i in index if i.axes["seed"] == r.axes["seed"]]
        against = paired[0].name if paired else "index"
        leads = [_mean_lead(paired or index, [r], p) for p in points]
        lines.append(f"| {r.name} minus {against} (pp) | | | " + " | ".join(f"{d:+.2f}" if d is not None else "-" for d in leads)
                     + " | | |")
    return lines


def _lead_plot(select: Selector, path: Path) -> None:
    """Vision's lead over index (pp, mean over seeds) at every evaluation, one line per candidate run."""
    series: dict[str, list[float | None]] = {}
    xs = sorted({row["samples"] for run in select.runs if run.axes["protocol"] == "hot" for row in run.rows})
    for label, index_axes, vision_axes, _ in CANDIDATES:
        index, vision = select("hot", "index", **(index_axes or {})), select("hot", "vision", **vision_axes)
        if index and vision:
            series[label] = [_mean_lead(index, vision, x) for x in xs]
    plot_series(xs, series, path, "training samples (sequences) seen", "vision minus index accuracy (pp)",
                "What the hot start needs: vision's lead under each candidate", hlines={"no lead": 0.0})


def _mean_lead(index: list[Run], vision: list[Run], samples: int) -> float | None:
    """Mean vision accuracy minus mean index accuracy at `samples`, in pp, over the seeds that reached it
    (as the table's means are; an unfinished seed does not hide the others); None if either side has none."""
    i, v = acc_stats(index, samples)[0], acc_stats(vision, samples)[0]
    return None if i is None or v is None else 100 * (v - i)
