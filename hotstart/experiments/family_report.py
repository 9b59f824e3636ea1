"""The report's "family" section: the members of `hotstart sweep family` side by side, from their folders.

Pretraining (each member's own validation loss against samples seen, its parameters, training FLOPs
per sample and samples per second) and fine-tuning (test accuracy and macro-F1, mean +/- sd over seeds,
per mode and number of labelled documents), with two plots: the pretraining curves and the learning
curve. Numbers come only from the folders; a member still in progress is shown as such.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..plot import read_metrics
from ..training.checkpoint import read_json

DESCRIBED = {
    "mae": "PIXEL-M4's pixel MAE (ViT encoder over a rendered line)",
    "mae-cells": "the same MAE, one character per patch (our control: a filled grid, a glyph per masked patch)",
    "mlm": "character BERT (the MAE encoder's shape, masked characters)",
    "index": "HotStart index LM (GPT-2 decoder over character IDs)",
    "vision": "HotStart vision LM (8x8 glyphs, simp encoder, same decoder)",
}
PRETRAINING_METRIC = {"mae": ("val_loss", "masked-patch MSE"), "mae-cells": ("val_loss", "masked-patch MSE"), "mlm": ("val_acc", "masked-character accuracy"),
                      "index": ("val_acc", "next-character accuracy"), "vision": ("val_acc", "next-character accuracy")}


def is_family_folder(path: Path) -> bool:
    """True for a folder written by `hotstart sweep family`."""
    return (Path(path) / "family.json").is_file()


def _member_runs(folder: Path) -> list[tuple[str, Path]]:
    """(member, run folder) of every member that has started, in the family's order."""
    from .family import MEMBERS

    return [(m, folder / "runs" / f"family-{m}") for m in MEMBERS if (folder / "runs" / f"family-{m}" / "config.yaml").is_file()]


def reconstruction_text(r: dict[str, Any], member: str = "mae") -> str:
    """An MAE member's reconstructions read back by OCR (analysis/reconstruction.py), in words with its floor."""
    pct = lambda x: f"{100 * x:.1f}"
    recovered = "n/a" if r["recovered"] != r["recovered"] else f"{pct(r['recovered'])}%"
    share = (f" Read at {pct(r['read_share_reconstruction'])}% of the real line (the literal target: 50%), "
             f"which the floor alone reaches too ({pct(r['read_share_floor'])}%): masking leaves most of a line to read."
             if "read_share_floor" in r else "")
    verdict = "the reconstructions give back nothing a reader can use" if not r["recovered"] >= 0.1 else \
        ("readably reconstructed (recovered >= 50%, our target)" if r["recovered"] >= 0.5 else "partly readable")
    fixed = (" (ViTMAE masks a fixed count of the line's grid, a quarter of it: where the text fills less of the "
             "grid, as English sequences of this length do, more of the text is masked than the 25% ratio says)"
             if r["masked_share"] > 0.4 else "")
    return (f"The {'MAE' if member == 'mae' else member + ' MAE'}'s reconstructions read back by OCR (analysis/reconstruction.py; our reading): {r['lines']} validation "
            f"lines under the evaluation masks, {pct(r['masked_share'])}% of their text patches masked{fixed}, read whole. "
            f"Character error rate: real lines {pct(r['ocr_cer_real'])}% (the reader's ceiling), masked patches filled "
            f"by the model {pct(r['ocr_cer_reconstruction'])}%, filled by the zero predictor {pct(r['ocr_cer_floor'])}% "
            f"(the floor). Recovered, (floor - model) / (floor - real): {recovered}: {verdict}.{share}")


def _mean_sd(point: dict[str, Any], key: str) -> str:
    """"41.2 +/- 1.3" in percent (no sd for one seed)."""
    value = f"{100 * point[key]:.1f}"
    return value + (f" +/- {100 * point[key + '_sd']:.1f}" if point["seeds"] > 1 else "")


def family_section(folder: Path, out: Path, prefix: str = "family") -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Markdown, the pretraining CSV rows and the fine-tuning CSV rows of one family folder; writes
    PREFIX_pretraining.png, PREFIX_data_efficiency.png and PREFIX_finetuning.png into `out` (one prefix per family
    folder, so that two folders in one report keep their own pictures)."""
    record = read_json(folder / "family.json", "family record")
    settings = record.get("scale_settings", {})
    members = _member_runs(folder)
    pre_rows, tune_rows, curves = [], [], {}
    for member, run in members:
        rows = read_metrics(run)
        curves[member] = rows
        summary = read_json(run / "summary.json", "run summary") if (run / "summary.json").is_file() else None
        cost = read_json(run / "cost.json", "training cost") if (run / "cost.json").is_file() else {}
        key, _ = PRETRAINING_METRIC[member]
        speeds = [r["samples_per_s"] for r in rows if r.get("samples_per_s")]
        pre_rows.append({
            "member": member, "samples": rows[-1]["samples"] if rows else 0, "finished": summary is not None,
            key: rows[-1].get(key) if rows else None,
            **{k: rows[-1][k] for k in ("floor_zero_loss", "floor_mean_loss") if rows and k in rows[-1]}, "parameters": cost.get("parameters", {}).get("total"),
            "train_flops_per_sample": cost.get("train_flops_per_sample"),
            "samples_per_s": statistics.median(speeds) if speeds else None,
            "wall_s": summary.get("wall_s") if summary else None,
        })
        for mode in ("probe", "full"):
            path = run / mode / "finetune.json"
            if not path.is_file():
                continue
            result = read_json(path, "fine-tuning result")
            for point in result["curve"]:
                tune_rows.append({"member": member, "mode": mode, "encoder_parameters": result["parameters"],
                                  "max_chars": result["max_chars"], **point})
    seq_len = record.get("seq_len", settings.get("seq_len"))
    lines = [f"Scale '{record['scale']}': {settings.get('about', '')}. Every member pretrained on the same "
             f"{settings.get('pretrain_samples', 0):,} sequences of {seq_len} characters with the same training settings, "
             f"in {record.get('precision')}; "
             + (f"then fine-tuned on {record.get('task')} (its fixed train / dev / test documents, the first {seq_len} "
                f"characters of each), seeds {', '.join(map(str, settings.get('seeds', [])))}. " if record.get("task") else
                "pretraining only: no task in this corpus's language. ")
             + "Commands: " + "; ".join(f"`{c}`" for c in record.get("commands", [])) + "."]
    lines += ["", ("| member | what | pretrained (sequences) | pretraining metric at the end | parameters | "
              "training FLOPs / sample | samples/s |"), "|---|---|---:|---|---:|---:|---:|"]
    for row in pre_rows:
        key, label = PRETRAINING_METRIC[row["member"]]
        value = row.get(key)
        shown = "n/a" if value is None else (f"{100 * value:.2f}%" if key == "val_acc" else f"{value:.4f}")
        if value is not None and "floor_mean_loss" in row:  # the MAE's floors, logged at each evaluation
            best = min(row["floor_zero_loss"], row["floor_mean_loss"])
            shown += (f" (zeros {row['floor_zero_loss']:.4f}, mean patch {row['floor_mean_loss']:.4f}: "
                      f"{'learned nothing' if value >= 0.98 * best else f'{value / best:.2f} of the better floor'})")
        lines.append(f"| {row['member']} | {DESCRIBED[row['member']]} | {row['samples']:,}"
                     f"{'' if row['finished'] else ' (in progress)'} | {label} {shown} | "
                     f"{row['parameters'] / 1e6:.2f}M | {row['train_flops_per_sample'] / 1e9:.2f} GFLOP | "
                     f"{row['samples_per_s']:.1f} |" if row["parameters"] and row["samples_per_s"] else
                     f"| {row['member']} | {DESCRIBED[row['member']]} | {row['samples']:,} (in progress) | | | | |")
    if any("floor_mean_loss" in row for row in pre_rows):
        lines += ["", ("Beside the MAE's loss, two predictors that read nothing, on the same masked validation patches: "
                       "zeros (with normalised targets, each patch's own mean) and the mean masked patch. A loss within 2% "
                       "of the better of them learned nothing.")]
    for member, run in members:
        if (run / "readback.json").is_file():  # the MAEs (family.MAES)
            lines += ["", reconstruction_text(read_json(run / "readback.json", "reconstructions read back"), member)]
    if tune_rows:
        lines += ["", ("Fine-tuning: test accuracy and macro-F1 (%), mean +/- sd over seeds, by labelled training documents. "
                  "probe: a linear layer on the frozen encoder's vectors; full: the whole model fine-tuned."), "",
                  "| member | mode | encoder parameters | training documents | seeds | test accuracy | test macro-F1 |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for row in tune_rows:
            lines.append(f"| {row['member']} | {row['mode']} | {row['encoder_parameters'] / 1e6:.2f}M | "
                         f"{row['train_examples']:,} | {row['seeds']} | {_mean_sd(row, 'test_acc')} | "
                         f"{_mean_sd(row, 'test_macro_f1')} |")
    elif record.get("task", "inews-sentiment"):
        lines += ["", "No fine-tuning has finished yet."]
    majority = next((read_json(run / mode / "finetune.json", "fine-tuning result").get("majority")
                     for _, run in members for mode in ("probe", "full") if (run / mode / "finetune.json").is_file()), None)
    spreads = {member: spread for member, run in members for mode in ("probe", "full")
               if (run / mode / "finetune.json").is_file()
               and (spread := read_json(run / mode / "finetune.json", "fine-tuning result").get("pooled_spread"))}
    if spreads:  # a collapsed encoder gives every document nearly one vector
        lines += ["", "How spread the documents' pooled vectors are before fine-tuning (dev documents): " + "; ".join(
            f"{member}: mean cosine between two documents {s['mean_pairwise_cosine']:.2f}, sd across documents "
            f"{s['sd_across_documents']:.3f} against a mean norm of {s['mean_norm']:.1f}" for member, s in spreads.items()) + "."]
    if majority:
        lines += ["", (f"Always answering the most frequent training label ({majority['label']}) scores "
                       f"{100 * majority['test_acc']:.1f}% accuracy and {100 * majority['test_macro_f1']:.1f}% macro-F1 on the "
                       "test documents: a row at or near those learned nothing usable.")]
    if tune_rows:
        lines += ["", ("The seed papers report no iNews sentiment figures (PIXEL-M4 fine-tunes on other tasks, with AdamW at "
                  "1e-5 to 9e-5 and early stopping up to 15K steps, per its summary), so no paper number stands beside these.")]
    if curves:
        _pretraining_plot(curves, out / f"{prefix}_pretraining.png")
        lines += ["", f"![pretraining of each member]({prefix}_pretraining.png)"]
        if seq_len:
            _efficiency_plot(curves, seq_len, out / f"{prefix}_data_efficiency.png")
            lines += ["", ("Data efficiency: each member's pretraining metric against characters seen (log scale), with "
                           "where PIXEL-M4's own pretraining ends marked (1M steps of 256 lines of 529 patches; a 16 px "
                           "Chinese character takes about a patch), to show how far two cores are from it."), "",
                      f"![data efficiency of each member]({prefix}_data_efficiency.png)"]
    if tune_rows:
        _learning_curve_plot(tune_rows, out / f"{prefix}_finetuning.png")
        lines += ["", f"![fine-tuning by labelled documents]({prefix}_finetuning.png)"]
    return "\n".join(lines), pre_rows, tune_rows


def _efficiency_plot(curves: dict[str, list[dict[str, Any]]], seq_len: int, path: Path) -> None:
    """Data efficiency: one panel per member, its pretraining metric against characters seen (sequences x their
    length; log x), with where PIXEL-M4 pretrains marked on the MAE's panel."""
    from ..plot import mark_scales
    from .paper import PAPER_SCALES

    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.4), dpi=110, squeeze=False)
    for ax, (member, rows) in zip(axes[0], curves.items()):
        key, label = PRETRAINING_METRIC[member]
        points = [(r["samples"] * seq_len, r[key] * (100 if key == "val_acc" else 1)) for r in rows
                  if r.get(key) is not None and r["samples"] > 0]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
        ax.set_title(member, fontsize=9)
        ax.set_xlabel("characters seen (log)", fontsize=8)
        ax.set_ylabel(label + (" (%)" if key == "val_acc" else ""), fontsize=8)
        ax.grid(alpha=0.3)
        mark_scales(ax, PAPER_SCALES["mae"] if member == "mae" else {})  # mae-cells: not the paper's task
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pretraining_plot(curves: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """One panel per member: its own pretraining metric against samples seen (per language where logged)."""
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.2), dpi=110, squeeze=False)
    for ax, (member, rows) in zip(axes[0], curves.items()):
        key, label = PRETRAINING_METRIC[member]
        keys = [key] + sorted({k for r in rows for k in r if k.startswith("val_loss_")} if key == "val_loss" else [])
        for k in keys:
            points = [(r["samples"], r[k] * (100 if k == "val_acc" else 1)) for r in rows if r.get(k) is not None]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=k)
        ax.set_title(member, fontsize=9)
        ax.set_xlabel("sequences seen", fontsize=8)
        ax.set_ylabel(label + (" (%)" if key == "val_acc" else ""), fontsize=8)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _learning_curve_plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Test macro-F1 against labelled documents (log scale), a line per member and mode, sd as error bars."""
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for member in dict.fromkeys(r["member"] for r in rows):
        for mode, style in (("probe", "-"), ("full", "--")):
            points = [r for r in rows if r["member"] == member and r["mode"] == mode]
            if points:
                ax.errorbar([p["train_examples"] for p in points], [100 * p["test_macro_f1"] for p in points],
                            yerr=[100 * p["test_macro_f1_sd"] for p in points], linestyle=style, marker="o",
                            capsize=3, label=f"{member} ({mode})")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training documents")
    ax.set_ylabel("test macro-F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
