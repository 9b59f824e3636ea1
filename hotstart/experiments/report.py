"""`hotstart report`: the paper's tables from run folders, with the paper's numbers beside ours.

Reads sweep folders or single run folders (runs.py) and writes report.md, one CSV per table plus every
evaluation of every run, and the plots. Nothing in a table is typed in: ours come from the runs,
the paper's from paper.py, copied from the paper's tables.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import HotStartError
from ..models.decoder import DECODER_SIZES
from ..plot import plot_panels, plot_series
from ..training.checkpoint import read_json
from .attribution import attribution_section, is_attribution_folder
from .autoregressive import autoregressive_section, is_autoregressive_folder
from .compression import compression_section, is_compression_folder
from .controls import controls_section
from .explain import explain_section
from .family_report import family_section, is_family_folder
from .fonts import (
    fonts_section,
    is_fonts_folder,
    is_robustness_folder,
    robustness_section,
)
from .paper import HOT_POINTS, PAPER_EFFICIENCY, PAPER_HOT, PAPER_MAIN
from .runs import Run, Selector, acc_at, acc_stats, final_metrics, load_runs
from .sweep import CROPS, RESOLUTIONS
from .unseen import unseen_section
from .verdicts import replication_section, verdict_section

MODES = {1.0: "Vision-100%", 0.8: "Vision-80%", 0.5: "Vision-50%"}
GLYPH_CHARS = "山水火木日月人口中国"


def _pct(value: float | None, sd: float | None = None, n: int = 1) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f} ± {100 * sd:.2f}" if n > 1 and sd is not None else f"{100 * value:.2f}"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as CSV (the union of keys, in first-seen order)."""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def most_frequent_reference(runs: list[Run]) -> tuple[str, float] | None:
    """Accuracy of always predicting the most frequent character, on the runs' validation sequences."""
    from ..data.prepared import PreparedCorpus
    from ..training.evaluate import most_frequent_accuracy

    hot = [r for r in runs if r.axes["protocol"] == "hot"] or runs
    cfg = hot[0].config
    try:
        corpus = PreparedCorpus.load(cfg["data"])
    except HotStartError as exc:
        print(f"warning: no most-frequent-character line ({exc})", file=sys.stderr)
        return None
    n = cfg["train"].get("eval_sequences") or len(corpus.val_index)
    return "most frequent character", most_frequent_accuracy(corpus, corpus.val_index[:n])


# ----------------------------------------------------------------------------- RQ1, RQ3, RQ4


def _final_cell(mode: str, res: int | None, runs: list[Run], paper: tuple[float, float], csv_rows: list[dict[str, Any]],
                budgets: set[tuple[int, str]]) -> str:
    """One cell of the main table, 'ours acc / ppl (paper's)', recording its CSV row and its runs' budget."""
    ours, (pa, pp) = final_metrics(runs), paper
    csv_rows.append({"mode": mode, "res": res, "acc": ours and ours["acc"], "ppl": ours and ours["ppl"],
                     "seeds": ours and ours["n"], "paper_acc": pa / 100, "paper_ppl": pp})
    if not ours:
        return f"– ({pa:.2f} / {pp:g})"
    budgets.add((ours["samples"], ", ".join(ours["stops"])))
    return f"{100 * ours['acc']:.2f} / {ours['ppl']:.1f} ({pa:.2f} / {pp:g})"


def main_section(select: Selector) -> tuple[str, list[dict[str, Any]]]:
    """The paper's RQ1/RQ3/RQ4 table: accuracy / perplexity by mode x resolution, ours (paper)."""
    head = "| Mode | " + " | ".join(f"{r}x{r}" for r in RESOLUTIONS) + " |"
    lines = [head, "|---|" + "---:|" * len(RESOLUTIONS)]
    csv_rows, budgets = [], set()
    for crop in CROPS:
        cells = []
        for res in RESOLUTIONS:
            cells.append(_final_cell(MODES[crop], res, select("final", "vision", res=res, crop=crop),
                                     PAPER_MAIN[(crop, res)], csv_rows, budgets))
        lines.append(f"| {MODES[crop]} | " + " | ".join(cells) + " |")
    cell = _final_cell("Index", None, select("final", "index"), PAPER_MAIN[(None, None)], csv_rows, budgets)
    lines.append(f"| Index-based baseline | {cell} |" + " |" * (len(RESOLUTIONS) - 1))
    note = "; ".join(f"{n:,} samples ({stop})" for n, stop in sorted(budgets))
    text = ("Accuracy % / perplexity of the best checkpoint (lowest validation loss), ours (paper's). "
            f"Runs trained for: {note or 'no finished final-protocol runs'}.{_still_rising(select)}\n\n"
            + "\n".join(lines))
    return text, csv_rows


def _still_rising(select: Selector) -> str:
    """A sentence on how much the budget-stopped final runs still gained in their last third: a
    fixed budget is not the plateau that the paper's early stopping reaches."""
    gains = []
    for label, runs in (("index", select("final", "index")), ("vision 8x8", select("final", "vision", res=8))):
        ends = [(r.rows[-1]["samples"], r) for r in runs
                if r.summary and r.summary.get("stop_reason") == "max_samples" and r.rows]
        deltas = []
        for end, run in ends:
            earlier, _ = acc_at(run.rows, end * 2 // 3)
            if earlier is not None:
                deltas.append(100 * (run.rows[-1]["val_acc"] - earlier))
        if deltas:
            gains.append((label, ends[0][0], sum(deltas) / len(deltas)))
    if not gains:
        return ""
    end = gains[0][1]
    return (f" These runs stopped at their budget, not by early stopping. Over the last third of it "
            f"({end * 2 // 3:,} to {end:,} samples) accuracy still rose by "
            + ", ".join(f"{d:+.2f} pp ({label})" for label, _, d in gains)
            + ", so they compare models at equal budget, not at the plateau the paper's early stopping reaches.")


def resolution_plot(select: Selector, out: Path, reference: tuple[str, float] | None) -> Path:
    """Final accuracy against resolution, one line per crop, index and the plateau as flat lines."""
    series = {}
    for crop in CROPS:
        values = [final_metrics(select("final", "vision", res=res, crop=crop)) for res in RESOLUTIONS]
        series[MODES[crop]] = [100 * v["acc"] if v else None for v in values]
    hlines = {}
    index = final_metrics(select("final", "index"))
    if index:
        hlines["index baseline"] = 100 * index["acc"]
    if reference:
        hlines[reference[0]] = 100 * reference[1]
    return plot_series(list(RESOLUTIONS), series, out, "glyph resolution (pixels per side)", "final accuracy (%)",
                       "Final accuracy by resolution and crop", hlines, logx=True)


# ----------------------------------------------------------------------------- RQ2: the hot start


def hot_groups(select: Selector) -> dict[str, list[Run]]:
    """The hot-start comparison's three models, every seed."""
    return {"index": select("hot", "index"), "vision 8x8": select("hot", "vision", res=8),
            "vision 40x40": select("hot", "vision", res=40)}


def hot_section(select: Selector) -> tuple[str, list[dict[str, Any]]]:
    """The paper's hot-start table (ours over seeds, paper's below) and every evaluation point."""
    groups = hot_groups(select)
    lines = ["| samples | source | index % | 8x8 % (Δ pp) | 40x40 % (Δ pp) | 8x8 / index | 40x40 / index |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    csv_rows, any_interp = [], False
    for i, samples in enumerate(HOT_POINTS):
        stats = {name: acc_stats(runs, samples) for name, runs in groups.items()}
        any_interp |= any(s[3] for s in stats.values())
        base = stats["index"][0]
        cells = [_pct(*stats["index"][:3])]
        for name in ("vision 8x8", "vision 40x40"):
            mean, sd, n, _ = stats[name]
            delta = f" ({100 * (mean - base):+.2f})" if mean is not None and base is not None else ""
            cells.append(_pct(mean, sd, n) + delta)
        ratios = [f"{stats[n][0] / base:.2f}" if base and stats[n][0] is not None else "–" for n in ("vision 8x8", "vision 40x40")]
        seeds = "/".join(str(stats[n][2]) for n in groups)
        lines.append(f"| {samples:,} | ours (seeds {seeds}) | " + " | ".join(cells + ratios) + " |")
        p = {name: PAPER_HOT[name][i] for name in PAPER_HOT}
        lines.append(f"| | paper | {p['index']:.2f} | {p['vision 8x8']:.2f} ({p['vision 8x8'] - p['index']:+.2f}) | "
                     f"{p['vision 40x40']:.2f} ({p['vision 40x40'] - p['index']:+.2f}) | "
                     f"{p['vision 8x8'] / p['index']:.2f} | {p['vision 40x40'] / p['index']:.2f} |")
        for name, (mean, sd, n, interp) in stats.items():
            csv_rows.append({"samples": samples, "model": name, "acc_mean": mean, "acc_sd": sd, "seeds": n,
                             "interpolated": interp, "paper_acc": p[name] / 100})
    note = ("Accuracies at the paper's sample counts are linearly interpolated between our evaluation points "
            "(every 2,048 samples at cpu scale) where no evaluation fell exactly on them. " if any_interp else "")
    points = sorted({r["samples"] for runs in groups.values() for run in runs for r in run.rows})
    every = ["| samples | index % | 8x8 % | 40x40 % |", "|---:|---:|---:|---:|"]
    for samples in points:
        every.append(f"| {samples:,} | " + " | ".join(_pct(*acc_stats(runs, samples)[:3]) for runs in groups.values()) + " |")
    text = (f"Mean ± sd over seeds (n per model in the source column); Δ is vision minus index. {note}\n\n"
            + "\n".join(lines) + "\n\nEvery evaluation point (no interpolation):\n\n" + "\n".join(every))
    return text, csv_rows


# ----------------------------------------------------------------------------- efficiency


def efficiency_section(select: Selector, throughput: dict[str, Any] | None) -> tuple[str, list[dict[str, Any]]]:
    """Parameters, FLOPs, samples/s, Acc@8k and final accuracy of index and each encoder, ours (paper)."""
    variants = {"index": {"kind": "index"}, **{f"vision-{e}": {"kind": "vision", "encoder": e} for e in ("orig", "opt", "simp")}}
    measured = (throughput or {}).get("variants", {})
    index_flops = measured.get("index", {}).get("flops_forward_per_sample")
    lines = ["| Config | Params (input path) | FLOPs / sample (forward) | samples/s | Acc@8k % | Final Acc % |",
             "|---|---:|---:|---:|---:|---:|"]
    csv_rows = []
    for name, axes in variants.items():
        m = measured.get(name, {})
        p_params, p_flops, p_speed, p_acc8, p_final = PAPER_EFFICIENCY[name]
        params = f"{m['parameters_input'] / 1e6:.2f}M" if m else "–"
        flops = m.get("flops_forward_per_sample")
        rel = f" ({100 * (flops / index_flops - 1):+.0f}%)" if flops and index_flops and name != "index" else ""
        flops_cell = f"{flops / 1e9:.2f}G{rel}" if flops else "–"
        speed = m.get("samples_per_s")
        acc8, sd8, n8, _ = acc_stats(select("hot", **axes), 8192)
        final = final_metrics(select("final", **axes))
        speed_cell = f"{speed:.1f}" if speed else "–"
        final_cell = f"{100 * final['acc']:.2f}" if final else "–"
        lines.append(f"| {name} | {params} ({p_params}) | {flops_cell} ({p_flops}) | {speed_cell} ({p_speed}) | "
                     f"{_pct(acc8, sd8, n8)} ({p_acc8}) | {final_cell} ({p_final}) |")
        csv_rows.append({"config": name, "params_input": m.get("parameters_input"), "params_total": m.get("parameters_total"),
                         "flops_forward_per_sample": flops, "flops_train_per_sample": m.get("flops_train_per_sample"),
                         "samples_per_s": speed, "acc_8k": acc8, "final_acc": final and final["acc"],
                         "paper_params": p_params, "paper_flops": p_flops, "paper_samples_per_s": p_speed,
                         "paper_acc_8k": p_acc8 / 100, "paper_final_acc": p_final / 100})
    if throughput:
        how = (f"FLOPs counted by torch's FLOP counter on one real training batch ({throughput['batch_size']} x "
               f"{throughput['seq_len']}), divided by the batch size; vision encodes only the batch's distinct glyphs. "
               f"samples/s: median of {throughput['repeats']} rounds in one process, the variants taking turns "
               f"({throughput['decoder']} decoder, {throughput['precision']}, {throughput['device']}, "
               f"{throughput['threads']} threads). ")
    else:
        how = "No throughput.json (the efficiency grid writes it): FLOPs and samples/s are missing. "
    text = (f"Ours (paper's; the paper's decoder is GPT-2 small on an RTX 5090 laptop GPU, ours is the sweep's). {how}"
            "Acc@8k is at 8,192 samples under the hot-start protocol; final accuracy as in the main table.\n\n"
            + "\n".join(lines))
    return text, csv_rows


# ----------------------------------------------------------------------------- ablations


def ablations(select: Selector) -> list[tuple[str, dict[str, list[Run]]]]:
    """Each factor that might drive the hot start, varied alone (hot protocol)."""
    index, vision = select("hot", "index"), select("hot", "vision")
    sizes = sorted({r.axes["size"] for r in select.runs if r.axes["protocol"] == "hot"},
                   key=lambda s: DECODER_SIZES[s].n_embd * DECODER_SIZES[s].n_layer if s in DECODER_SIZES else 0)
    decoder = {}
    for size in sizes:
        decoder[f"index, {size}"] = select("hot", "index", size=size)
        decoder[f"vision 8x8, {size}"] = select("hot", "vision", size=size)
    return [
        ("Learning-rate schedule: OneCycle, our reading of the paper's (starting at 1.5e-3 / 25 = 6e-5 and rising slowly; the paper quotes lr 2e-4, max 1.5e-3) vs a short warm-up to 1e-3 and cosine decay",
         {"index, OneCycle": index, "index, warm-up": select("hot", "index", schedule="warmup"),
          "vision 8x8, OneCycle": vision, "vision 8x8, warm-up": select("hot", "vision", schedule="warmup")}),
        ("Index embedding initialisation (normal, std)",
         {"index, std 0.02 (GPT-2)": index, "index, std 0.2": select("hot", "index", embed_init_std=0.2),
          "index, std 1.0": select("hot", "index", embed_init_std=1.0), "vision 8x8 (reference)": vision}),
        ("Glyph pixel normalisation",
         {"vision 8x8, standardised bank": vision, "vision 8x8, raw ink in [0, 1]": select("hot", "vision", pixel_norm="raw"),
          "index (reference)": index}),
        ("Normalisation of the encoder's output",
         {"vision 8x8, output LayerNorm": vision, "vision 8x8, no output norm": select("hot", "vision", output_norm="none"),
          "index (reference)": index}),
        ("Encoder size (8x8)",
         {f"vision, {e}": select("hot", "vision", encoder=e) for e in ("simp", "opt", "orig")} | {"index (reference)": index}),
        ("Decoder size", decoder),
    ]


def plateau_exit(runs: list[Run], reference: float | None) -> int | None:
    """First evaluation (samples) where every run that reached it is 1 point above the most-frequent-character
    plateau (as the tables' means are over the seeds that reached a point: an unfinished seed hides nothing)."""
    if reference is None or not runs:
        return None
    points = sorted({r["samples"] for run in runs for r in run.rows})
    for samples in points:
        values = [v for v in (acc_at(run.rows, samples)[0] for run in runs) if v is not None]
        if values and all(v > reference + 0.01 for v in values):
            return samples
    return None


def ablation_section(select: Selector, factors: list[tuple[str, dict[str, list[Run]]]],
                     reference: tuple[str, float] | None, hot_end: int) -> tuple[str, list[dict[str, Any]], list, dict[str, str]]:
    """One small table per factor: accuracy at 4k, 8k and the window's end, and when the plateau is left."""
    checkpoints = sorted({4096, 8192, hot_end})
    parts, csv_rows, panels, colors = [], [], [], {}
    ref = reference[1] if reference else None
    paper_setting = list(select.paper_setting().values())  # same colours in every panel
    for title, groups in factors:
        groups = {k: v for k, v in groups.items() if v}
        if not groups:
            continue
        lines = ["| variant | seeds | " + " | ".join(f"acc @ {c:,} %" for c in checkpoints) + " | leaves plateau at |",
                 "|---|---:|" + "---:|" * len(checkpoints) + "---:|"]
        for label, runs in groups.items():
            stats = [acc_stats(runs, c) for c in checkpoints]
            exit_at = plateau_exit(runs, ref)
            running = sum(1 for r in runs if not r.summary)
            seeds = f"{len(runs)}" + (f" ({running} unfinished)" if running else "")
            lines.append(f"| {label} | {seeds} | " + " | ".join(_pct(*s[:3]) for s in stats)
                         + f" | {f'{exit_at:,}' if exit_at is not None else 'not within the window'} |")
            for c, s in zip(checkpoints, stats):
                csv_rows.append({"ablation": title, "variant": label, "samples": c, "acc_mean": s[0], "acc_sd": s[1],
                                 "seeds": s[2], "leaves_plateau_at": exit_at})
        parts.append(f"#### {title}\n\n" + "\n".join(lines))
        panels.append((title.split(":")[0], {k: [r.rows for r in v] for k, v in groups.items()}))
        variants = (label for label, runs in groups.items() if runs not in paper_setting)
        colors |= {label: f"C{i}" for i, label in enumerate(variants, 2)}  # C0, C1: the paper's setting
        colors |= {label: f"C{paper_setting.index(runs)}" for label, runs in groups.items() if runs in paper_setting}
    plateau = (f"'Leaves plateau at': the first evaluation where every seed is more than 1 point above the "
               f"most-frequent-character accuracy ({100 * ref:.2f}%). " if ref is not None else "")
    text = (f"Hot-start protocol, mean ± sd over the seeds run. {plateau}\n\n" + "\n\n".join(parts))
    return text, csv_rows, panels, colors


# ----------------------------------------------------------------------------- the report


def _records(curves: dict[str, list[list[dict[str, Any]]]], metric: str) -> bool:
    """Whether any evaluation row of any run in `curves` has `metric` (newer runs record more)."""
    return any(row.get(metric) is not None for runs in curves.values() for rows in runs for row in rows)


def embeddings_section(runs: list[Run]) -> tuple[str, list[dict[str, Any]]]:
    """The input-vector spread of every run that has an embeddings.json, starting weights against best."""
    kept = sorted((r for r in runs if r.embeddings), key=lambda r: (r.axes["protocol"], r.axes["kind"], r.name))
    if not kept:
        return ("No run here has an embeddings.json. `hotstart embeddings RUN...` writes one from a run's "
                "checkpoints (kept only on the machine that trained it)."), []
    lines = [
        ("How distinct the vectors are that the decoder receives, one per character: the mean cosine similarity "
         "between different characters (1: all alike), over the whole vocabulary and over its 1,000 most frequent "
         "characters; the share of characters whose nearest other character is within cosine 0.99 (the decoder "
         "can hardly tell those apart); the effective rank of the centred table (out of its dimensions); the "
         "mean length of a vector (GPT-2's position embeddings start at about 0.02 x sqrt(width)). "
         "*init* is the run's starting weights (rebuilt from its seed), *best* its best checkpoint; each run "
         "folder's embeddings.json records the `hotstart embeddings` command behind every entry. Runs trained "
         "by hotstart 0.2.1 or later also record the mean cosine at every evaluation (input_mean_cosine in "
         "curves.csv; `hotstart plot RUN... --metric input_mean_cosine` draws it)."),
        "",
        ("| run | best acc % | mean cos init → best | frequent mean cos init → best | near-duplicates init → best "
         "| effective rank init → best (of) | mean norm init → best |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    csv_rows = []

    def pair(key: str, fmt: str) -> str:
        return " → ".join(format(e[key], fmt) if e else "–" for e in (init, best))

    for run in kept:
        init, best = run.embeddings.get("init"), run.embeddings.get("best")
        acc = _pct(run.best["val_acc"]) if run.best else "–"
        dims = (best or init)["dimensions"]
        lines.append(f"| {run.name} | {acc} | {pair('mean_cosine', '.2f')} | {pair('mean_cosine_top', '.2f')} | "
                     f"{pair('near_duplicate_share', '.1%')} | {pair('effective_rank', '.0f')} ({dims}) | "
                     f"{pair('mean_norm', '.2f')} |")
        csv_rows += [{"run": run.name, "checkpoint": checkpoint, **{k: v for k, v in stats.items() if k != "command"}}
                     for checkpoint, stats in run.embeddings.items()]
    return "\n".join(lines), csv_rows


def _glyph_grid(runs: list[Run], out: Path) -> Path | None:
    """Every resolution x crop of the vision runs, rendered with their font."""
    from ..config import from_dict
    from ..render.glyph import RenderConfig, render_grid

    vision = [r for r in runs if r.axes["kind"] == "vision"]
    if not vision:
        return None
    render = from_dict(RenderConfig, vision[0].config["model"]["input"]["render"])
    resolutions = sorted({r.axes["res"] for r in vision})
    return render_grid(GLYPH_CHARS, out, render, resolutions=resolutions, crops=CROPS)


def _environment_section(runs: list[Run], sweeps: list[dict[str, Any]], command: str, seconds: float) -> str:
    envs = {}
    for run in runs:
        env = (run.summary or {}).get("environment")
        if env:
            key = tuple(sorted(env.items()))
            envs[key] = envs.get(key, 0) + 1
    wall = sum((r.summary or {}).get("wall_s", 0) for r in runs)
    lines = ["Commands that trained the runs:", ""]
    lines += [f"    {c}" for sweep in sweeps for c in sweep.get("commands", [])] or ["    (single runs: see each run's config.yaml)"]
    lines += ["", "Command that wrote this report:", "", f"    {command}", ""]
    lines += [f"Environment of the runs ({n} run(s)): " + ", ".join(f"{k} {v}" for k, v in env) for env, n in envs.items()]
    finished = sum(1 for r in runs if r.summary)
    lines += ["", (f"{len(runs)} runs ({finished} finished, {len(runs) - finished} unfinished: training, or stopped before their budget); training wall "
                   f"time of all runs together {wall / 3600:.2f} h; the report took {seconds:.1f} s.")]
    for sweep in sweeps:
        settings = sweep.get("scale_settings")
        if settings:
            lines += ["", f"Scale '{sweep['scale']}' ({sweep['path']}): " + ", ".join(f"{k} {v}" for k, v in settings.items())]
        if any("--data" in command for command in sweep.get("commands", [])):
            continue  # the sweep's own prepared corpus, not the built-in one
        # a record made before corpus versions existed read version 1 (sweep.corpus_version)
        lines += ["", (f"Corpus of {sweep['path']}: the built-in inews, version {sweep.get('corpus_version', 1)} "
                      "(`hotstart prepare --corpus-version`; 1 keeps the package's escaped newlines as text)")]
    return "\n".join(lines)


def completeness(runs: list[Run], sweeps: list[dict[str, Any]]) -> str | None:
    """A warning line when the sweeps' planned runs are not all finished, naming what is missing; else None."""
    planned = {name for sweep in sweeps for name in sweep.get("runs", {})}
    present = {r.name for r in runs}
    finished = {r.name for r in runs if r.summary}
    if planned <= finished:
        return None
    missing = sorted(planned - present)
    in_progress = sorted((planned & present) - finished)
    names = (f" ({', '.join(missing[:8])}{f' and {len(missing) - 8} more' if len(missing) > 8 else ''})"
             if missing else "")
    return (f"**Partial report: {len(planned & finished)} of {len(planned)} planned runs finished, "
            f"{len(in_progress)} unfinished, {len(missing)} not started{names}.** Tables show what exists; "
            "rerun the sweep's command (below) to finish the rest, then this report's command.")


def corpus_note(folder: Path) -> str:
    """One line naming the corpus a grid folder trained on: its own prepared corpus (--data), or the built-in
    inews and its version (a record from before corpus versions existed read version 1)."""
    records = [path for path in sorted(Path(folder).glob("*.json")) if path.stem in {"family", *MEMBER_GRIDS}]
    record = read_json(records[0], "grid record") if records else {}
    if any("--data" in command for command in record.get("commands", [])):
        return f"Corpus of {folder}: the grid's own prepared corpus (`--data`)."
    name = record.get("corpus", "inews")
    return (f"Corpus of {folder}: the built-in {name}, version {record.get('corpus_version', 1)}"
            + (" (`hotstart prepare --corpus-version`; 1 keeps the package's escaped newlines as text)." if name == "inews" else "."))


MEMBER_GRIDS = {
    "autoregressive": (is_autoregressive_folder, autoregressive_section,
                       "Autoregressive language models side by side: reading pixels, writing pixels, or both"),
    "fonts": (is_fonts_folder, fonts_section, "Other typefaces: reading a font not trained on"),
    "robustness": (is_robustness_folder, robustness_section, "Noisy and look-alike input"),
    "attribution": (is_attribution_folder, attribution_section, "The toast centre, measured: which pixels a vision LM reads"),
    "compression": (is_compression_folder, compression_section, "How far a line can be squeezed: characters per patch against reading it back"),
}
"""Grids of named members with one section and one CSV each: folder test, section, section title."""


def write_report(paths: list[str | Path], out: str | Path, command: str = "") -> Path:
    """Read the runs under `paths` and write report.md, the CSVs and the plots into `out`."""
    start = time.perf_counter()
    families = [Path(p) for p in paths if is_family_folder(Path(p))]
    grids = {name: [Path(p) for p in paths if is_grid(Path(p))] for name, (is_grid, _, _) in MEMBER_GRIDS.items()}
    others = [p for p in paths if not is_family_folder(Path(p)) and not any(is_grid(Path(p)) for is_grid, _, _ in MEMBER_GRIDS.values())]
    grids["fonts"] = [p for p in grids["fonts"] if any(p.glob("runs/fonts-*/typefaces.json"))]  # robustness alone: no table
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    family_parts = []
    for index, folder in enumerate(families):  # one family: family_*.png; several: each its own pictures
        prefix = "family" if len(families) == 1 else f"family{index + 1}-{folder.name}"
        text, pre_rows, tune_rows = family_section(folder, out, prefix)
        family_parts.append(text + "\n\n" + corpus_note(folder))
        write_csv(out / "family_pretraining.csv", pre_rows)
        write_csv(out / "family_finetuning.csv", tune_rows)
    grid_parts: dict[str, list[str]] = {}
    for name, folders in grids.items():  # as for families: one folder, NAME*.png; several, each its own pictures
        _, section, _ = MEMBER_GRIDS[name]
        csv_rows = []
        for index, folder in enumerate(folders):
            prefix = name if len(folders) == 1 else f"{name}{index + 1}-{folder.name}"
            text, rows = section(folder, out, prefix)
            note = "" if name == "compression" else "\n\n" + corpus_note(folder)  # it names its two corpora itself
            grid_parts.setdefault(name, []).append(text + note)
            csv_rows += [{"folder": str(folder), **row} for row in rows] if len(folders) > 1 else rows
        if folders:
            write_csv(out / f"{name}.csv", csv_rows)
    grid_sections = [f"## {MEMBER_GRIDS[name][2]}\n\n" + "\n\n".join(parts) for name, parts in grid_parts.items()]
    grid_csvs = [f"{name}.csv" for name in grid_parts]
    if not others:  # family and member-grid folders alone: their sections are the report
        path = out / "report.md"
        csvs = ["family_pretraining.csv", "family_finetuning.csv"] * bool(family_parts) + grid_csvs
        path.write_text("\n\n".join(["# HotStart: the model families side by side", *family_parts, *grid_sections,
                                      (f"Made by `{command or 'hotstart report'}`; the numbers are in {', '.join(csvs)}.")])
                        + "\n", encoding="utf-8")
        return path
    runs, sweeps, throughput = load_runs(others)
    select = Selector(runs)
    reference = most_frequent_reference(runs)
    hot_end = max((r["samples"] for run in runs if run.axes["protocol"] == "hot" for r in run.rows), default=16384)
    main_text, main_rows = main_section(select)
    hot_text, hot_rows = hot_section(select)
    eff_text, eff_rows = efficiency_section(select, throughput)
    factors = ablations(select)  # read by the ablation tables and the plain summary
    abl_text, abl_rows, panels, colors = ablation_section(select, factors, reference, hot_end)
    emb_text, emb_rows = embeddings_section(runs)
    explain_text, explain_rows = explain_section(select, out)
    controls_text, controls_rows = controls_section(select, reference[1] if reference else None)
    unseen_text, unseen_rows = unseen_section(runs, out, reference[1] if reference else None)
    verdict_text, verdict_rows = verdict_section(select, reference[1] if reference else None)
    groups = hot_groups(select)
    hot_curves = {k: [r.rows for r in v] for k, v in groups.items() if v}
    plot_panels([("Hot start (band: min-max over seeds; squares: the paper, GPT-2 small)", hot_curves)],
                out / "hot_start.png", reference, columns=1,
                paper={label: (HOT_POINTS, values) for label, values in PAPER_HOT.items()})
    resolution_plot(select, out / "resolution.png", reference)
    if panels:
        plot_panels(panels, out / "ablations.png", reference, colors=colors)
    # the same panels again, drawing how alike the input vectors are (runs of 0.2.1 on record it)
    spread_panels = [(title, curves) for title, curves in [("Hot start", hot_curves), *panels]
                     if _records(curves, "input_mean_cosine")]
    if spread_panels:
        plot_panels(spread_panels, out / "input_spread.png", colors=colors, metric="input_mean_cosine")
        emb_text += ("\n\nMean cosine between the input vectors of different characters at every evaluation, where the "
                     "runs recorded it (hot-start protocol):\n\n![input spread](input_spread.png)")
    glyphs = _glyph_grid(runs, out / "glyphs.png")
    for name, rows in (("main", main_rows), ("hot_start", hot_rows), ("efficiency", eff_rows),
                       ("ablations", abl_rows), ("verdicts", verdict_rows), ("embeddings", emb_rows),
                       ("explain", explain_rows), *([("unseen", unseen_rows)] if unseen_rows else []),
                       *([("controls", controls_rows)] if controls_rows else [])):
        write_csv(out / f"{name}.csv", rows)
    write_csv(out / "runs.csv", [{"run": r.name, **r.axes, **{f"best_{k}": v for k, v in (r.best or {}).items()},
                                  "stop_reason": (r.summary or {}).get("stop_reason", "in progress")} for r in runs])
    write_csv(out / "curves.csv", [{"run": r.name, **r.axes, **row} for r in runs for row in r.rows])
    ref_line = f"{reference[0]}: {100 * reference[1]:.2f}%" if reference else "no reference line"
    scales = [f"scale '{w['scale']}': {w['scale_settings']['about']}" for w in sweeps if w.get("scale_settings")]
    sections = [
        "# HotStart: the paper's experiments, rerun",
        *([partial] if (partial := completeness(runs, sweeps)) else []),
        (f"Decoder of the sweep: {select.base_size}{'; ' + '; '.join(scales) if scales else ''}. "
         f"Validation reference ({ref_line})."),
        "## Verdicts\n\n" + verdict_text,
        "## What did and did not replicate\n\n" + replication_section(select, verdict_rows, factors, explain_rows),
        "## RQ2: the hot start\n\n" + hot_text + "\n\n![hot start](hot_start.png)",
        "## RQ1, RQ3, RQ4: final accuracy by mode and resolution\n\n" + main_text + "\n\n![resolution](resolution.png)",
        "## Efficiency\n\n" + eff_text,
        "## What drives the hot start: ablations\n\n" + abl_text + ("\n\n![ablations](ablations.png)" if panels else ""),
        "## What the hot start needs\n\n" + explain_text,
        *(["## Pixels or parametrisation: the controls\n\n" + controls_text] if controls_rows else []),
        *(["## Characters never seen in training\n\n" + unseen_text] if unseen_rows else []),
        "## Input vectors: how distinct are the characters?\n\n" + emb_text,
        "## Glyphs\n\n" + ("![glyphs](glyphs.png)" if glyphs else "No vision runs."),
        *(["## The family: pixel and index encoders, pretrained alike, fine-tuned on one task\n\n" + "\n\n".join(family_parts)]
          if family_parts else []),
        *grid_sections,
        ("## Data\n\nEvery number above is in the CSV files beside this report: main.csv, hot_start.csv, efficiency.csv, "
         "ablations.csv, verdicts.csv, embeddings.csv, explain.csv" + (", controls.csv" if controls_rows else "") + (", family_pretraining.csv, family_finetuning.csv" if family_parts else "")
         + "".join(f", {name}" for name in grid_csvs)
         + "; runs.csv has one row per run and curves.csv every evaluation of every run."),
        "## How this was made\n\n" + _environment_section(runs, sweeps, command or "hotstart report", time.perf_counter() - start),
    ]
    path = out / "report.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path
