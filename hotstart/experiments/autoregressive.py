"""`hotstart sweep autoregressive`: the seeds' autoregressive language models side by side, on one
Llama-style decoder, size, corpus and budget: does reading pixels, writing pixels, or both, learn the
language faster?

    index     HotStart's index LM: character IDs in, character IDs out
    vision    HotStart's vision LM: 8x8 glyphs in (simp encoder), character IDs out
    pixelgpt  PixelGPT: a line of 16x16 grey character cells in, the next cell's pixels out (MSE)
    pixelgpt-text  PixelGPT as its paper draws text: running text in 16x16 grey patches, read back by OCR
    pixar-1   PIXAR stage 1: binary 8x8 character cells, 2 per position, per-pixel likelihood
    pixar-2   PIXAR stage 2: pixar-1's last weights, then the adversarial loss for a given number of steps
    dual      DualGPT: IDs, 16x16 lines and lines paired with their text (the paper's 4:4:2 mix)

Every member but pixar-2 trains on the same sequences, as many of them, with the same training settings
(the family grid's: batch 32, cosine 5e-4 over the budget, no curriculum, no early stopping). The
pixel members but pixelgpt-text draw one character per patch (`cell: char`), so their predictions read
back as characters (analysis/readback.py) and their next-character accuracy is HotStart's metric on the
same validation sequences; pixelgpt-text's running text has no cell per character and is read back by
OCR only. After training, each pixel-writing member continues the first validation sequences' openings
and its continuations are read back: readability and agreement with the prompt's script, beside the
same measures of the real continuations drawn alike (readback.json, generations.png).

A grid folder holds data/, runs/auto-MEMBER/ (with cost.json and, for pixel writers, readback.json and
generations.png) and autoregressive.json; rerunning the command resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..data.corpus import INEWS
from ..data.prepared import PreparedCorpus
from ..errors import HotStartError
from ..models.decoder import decoder_size
from ..models.dual_lm import DualLMConfig
from ..models.hotstart_lm import InputConfig, ModelConfig
from ..models.pixar import AdversarialConfig
from ..models.pixel_lm import PixelLMConfig
from ..render.line import LineRenderConfig, has_visible
from ..training.checkpoint import read_json, write_json
from ..training.config import TrainConfig, line_train_defaults
from ..training.dual_run import DualRunConfig
from ..training.lines import CorpusLines
from ..training.next_patch_run import NextPatchRunConfig
from ..training.pixar_run import PixarRunConfig
from ..training.run import RunConfig
from .family import training_cost
from .formatting import percent
from .grid import check_members, open_member_grid, train_member

MEMBERS = ("index", "vision", "pixelgpt", "pixelgpt-text", "pixar-1", "pixar-2", "dual")
WRITES_PIXELS = ("pixelgpt", "pixelgpt-text", "pixar-1", "pixar-2", "dual")
DESCRIBED = {
    "index": ("character IDs", "character IDs"),
    "vision": ("8x8 glyphs", "character IDs"),
    "pixelgpt": ("16x16 grey cells", "16x16 grey cells (MSE)"),
    "pixelgpt-text": ("16x16 grey running text", "16x16 grey patches (MSE)"),
    "pixar-1": ("8x8 binary cells, L = 2", "ink probabilities (likelihood)"),
    "pixar-2": ("8x8 binary cells, L = 2", "ink probabilities (+ adversarial)"),
    "dual": ("IDs, 16x16 cells, pairs", "IDs and 16x16 cells"),
}
"""member -> (what it reads, what it writes)."""


@dataclass(frozen=True)
class AutoregressiveScale:
    """How big the comparison is."""

    name: str
    size: str
    """The decoder size every member shares (Llama-style blocks)."""
    seq_len: int
    samples: int
    """Training sequences of every member (pixar-2: of its stage 1)."""
    stage2_steps: int
    """PIXAR stage 2's optimiser steps after stage 1 (the paper: 200)."""
    eval_every: int
    eval_sequences: int
    prompts: int
    """Generations read back per pixel-writing member."""
    about: str
    batch_size: int = 32
    """Sequences per optimiser step of every member."""
    current: bool = False
    """Lines drawn as new runs draw them (binary lines aliased, ink kept inside the line) and PIXAR's discriminator
    judging what generation emits; False keeps the settings the scale's first runs trained with."""


AUTOREGRESSIVE_SCALES = {
    "smoke": AutoregressiveScale("smoke", size="tiny", seq_len=32, samples=64, stage2_steps=2, eval_every=32,
                                 eval_sequences=8, prompts=2, about="checks the machinery; the numbers mean nothing"),
    # planned in optimiser steps: 6,000 of 16 sequences, about half an hour to an hour per member alone on 2 cores
    # (the first plan, 512 steps of 32, left every pixel writer at its floor: the report of docs/results/autoregressive)
    "cpu": AutoregressiveScale("cpu", size="small-cpu", seq_len=128, samples=96_000, stage2_steps=200, eval_every=8_000,
                               eval_sequences=256, prompts=20, batch_size=16, current=True,
                               about="small-cpu Llama-style decoder (4 x 256) for every member, 6,000 steps of 16 sequences"),
}


def autoregressive_scale(name: str) -> AutoregressiveScale:
    """The named scale, or a one-line error."""
    if name not in AUTOREGRESSIVE_SCALES:
        raise HotStartError(f"the autoregressive grid has no scale '{name}'; choose one of {', '.join(AUTOREGRESSIVE_SCALES)}")
    return AUTOREGRESSIVE_SCALES[name]


def _char_line(seq_len: int, current: bool = False, **kw: Any) -> LineRenderConfig:
    """One character per patch, room for a whole sequence and its end patch (an even count, for L = 2); drawn as new
    runs draw lines where `current`."""
    drawn = {"binary_draw": "aliased", "edge": "fit"} if current else {}
    return LineRenderConfig(cell="char", max_patches=seq_len + 1 + (seq_len + 1) % 2, **drawn, **kw)


def member_config(member: str, scale: AutoregressiveScale, data: str, out: Path, seq_len: int) -> Any:
    """The run config of `member`: the same decoder, size, sequences and training settings for all;
    lines as long as the corpus's sequences of `seq_len` characters."""
    tc: TrainConfig = replace(line_train_defaults(), batch_size=scale.batch_size, max_samples=scale.samples,
                              schedule_samples=scale.samples, eval_every=scale.eval_every, dense_until=scale.samples,
                              eval_every_late=scale.eval_every, eval_sequences=scale.eval_sequences, patience=10**6)
    pixel = PixelLMConfig(size=scale.size, line=_char_line(seq_len, scale.current))
    if member in ("index", "vision"):
        return RunConfig(data=data, model=ModelConfig(vocab_size=0, input=InputConfig(kind=member),
                                                      decoder=decoder_size(scale.size, "llama")), train=tc)
    if member == "pixelgpt":
        return NextPatchRunConfig(data=data, model=pixel, train=tc)
    if member == "pixelgpt-text":  # running text fits the char cells' line: a Han character is under a patch wide
        return NextPatchRunConfig(data=data, model=replace(pixel, line=replace(pixel.line, cell="free")), train=tc)
    if member in ("pixar-1", "pixar-2"):
        model = PixelLMConfig(size=scale.size, line=_char_line(seq_len, scale.current, patch=8, mode="binary"),
                              head="bernoulli", patch_len=2)
        if member == "pixar-1":
            return PixarRunConfig(data=data, model=model, train=tc)
        stage2 = scale.stage2_steps * tc.batch_size
        return PixarRunConfig(data=data, model=model, stage=2,
                              adversarial=AdversarialConfig(stage1_run=str((out / "runs" / "auto-pixar-1").resolve()),
                                                                stage1_checkpoint="last",
                                                                disc_sees="emitted" if scale.current else "soft"),
                              train=replace(tc, max_samples=stage2, schedule_samples=stage2, warmup_samples=0,
                                            eval_every=stage2 // 4 or 1, dense_until=stage2, eval_every_late=stage2 // 4 or 1))
    if member == "dual":
        return DualRunConfig(data=data, model=DualLMConfig(pixel=pixel), train=tc)
    raise HotStartError(f"unknown member '{member}'; choose from {', '.join(MEMBERS)}")


def readback_prompts(corpus: PreparedCorpus, count: int, chars: int) -> tuple[list[str], list[str]]:
    """The openings (`chars` characters) of the first validation sequences that every font of the chain
    draws whole (a prompt with a character no font has would be refused), and the rest of each sequence."""
    lines = CorpusLines(corpus, LineRenderConfig(cell="char", max_patches=chars + 1))
    texts = [t for t in lines.texts(corpus.val_index[: 4 * count]) if has_visible(t[:chars])]
    texts = [t for t in texts if not lines.renderer.render_batch([t[:chars]]).missing][:count]
    return [t[:chars] for t in texts], [t[chars:] for t in texts]


def run_autoregressive(out: str | Path, scale_name: str = "cpu", data: str | None = None, members: list[str] | None = None,
                       precision: str = "auto", device: str = "auto", progress: bool = True,
                       command: str = "", corpus: str = INEWS) -> list[dict[str, Any]]:
    """Train every member not yet done, then read back its generations; one status row per member."""
    from ..use.generate import generation_readback
    scale = autoregressive_scale(scale_name)
    chosen = check_members(members, MEMBERS)
    if "pixar-2" in chosen and "pixar-1" not in chosen and not (Path(out) / "runs" / "auto-pixar-1" / "summary.json").is_file():
        chosen.insert(chosen.index("pixar-2"), "pixar-1")  # stage 2 starts from stage 1
    grid = open_member_grid(out, "autoregressive", "autoregressive.json", scale.name, scale.seq_len, data, precision,
                            device, progress, command, corpus, asdict(scale))
    corpus = grid.corpus
    grid.save(seq_len=corpus.seq_len, scale_settings=asdict(scale))
    statuses = []
    for member in chosen:
        run_dir = grid.out / "runs" / f"auto-{member}"
        done = (run_dir / "summary.json").is_file() and (member not in WRITES_PIXELS or _read_back(run_dir))
        if done:
            statuses.append({"member": member, "status": "done before"})
            continue
        cfg = member_config(member, scale, str(grid.corpus_dir), grid.out, corpus.seq_len)
        cfg.train.precision, cfg.train.device = grid.precision, device
        train_member(cfg, run_dir, progress)
        if not (run_dir / "cost.json").is_file():
            write_json(run_dir / "cost.json", training_cost(cfg, corpus))
        if member in WRITES_PIXELS:
            prompts, continuations = readback_prompts(corpus, scale.prompts, corpus.seq_len // 4)
            readback, sheet = generation_readback(run_dir, prompts, corpus.seq_len // 4, continuations=continuations)
            write_json(run_dir / "readback.json", readback)
            sheet.save(run_dir / "generations.png")
        statuses.append({"member": member, "status": "done"})
    return statuses


def _read_back(run_dir: Path) -> bool:
    """Whether a run's generations are read back, with the real continuations' measures beside them
    (older grids' readback.json lacks those: reading back again is cheap)."""
    path = run_dir / "readback.json"
    return path.is_file() and "reference_readability" in read_json(path, "generations read back")


def is_autoregressive_folder(path: Path) -> bool:
    """True for a folder written by `hotstart sweep autoregressive`."""
    return (Path(path) / "autoregressive.json").is_file()


def autoregressive_section(folder: Path, out: Path, prefix: str = "autoregressive") -> tuple[str, list[dict[str, Any]]]:
    """Markdown and CSV rows of one autoregressive grid folder; writes PREFIX_accuracy.png,
    PREFIX_data_efficiency.png and each pixel writer's generations (PREFIX_MEMBER.png) into `out` (one prefix per
    folder, so that two folders in one report keep their own pictures)."""
    import shutil

    from ..plot import read_metrics

    record = read_json(folder / "autoregressive.json", "grid record")
    settings = record.get("scale_settings", {})
    rows, curves = [], {}
    for member in MEMBERS:
        run = folder / "runs" / f"auto-{member}"
        if not (run / "config.yaml").is_file():
            continue
        metrics = read_metrics(run)
        curves[member] = metrics
        summary = read_json(run / "summary.json", "run summary") if (run / "summary.json").is_file() else None
        cost = read_json(run / "cost.json", "training cost") if (run / "cost.json").is_file() else {}
        readback = read_json(run / "readback.json", "generations read back") if (run / "readback.json").is_file() else {}
        last = metrics[-1] if metrics else {}
        stage1 = settings.get("samples", 0) if member == "pixar-2" else 0
        rows.append({
            "member": member, "reads": DESCRIBED[member][0], "writes": DESCRIBED[member][1],
            "samples": stage1 + last.get("samples", 0), "finished": summary is not None,
            "val_acc": last.get("val_acc"), "val_pair_acc": last.get("val_pair_acc"), "blank_acc": (floors := _floors(run)).get("blank"),
            "most_frequent_acc": floors.get("most_frequent"), "learned": learned(last.get("val_acc"), floors),
            "rank1_acc": last.get("val_rank1_acc"), "rank10_acc": last.get("val_rank10_acc"),
            "readability": readback.get("readability"), "language_agreement": readback.get("language_agreement"),
            "reader": readback.get("reader"), "reference_readability": readback.get("reference_readability"),
            # the LM's own parameters: PIXAR's stage-2 discriminator trains beside it but is no part of it
            "parameters": (cost["parameters"]["total"] - cost["parameters"].get("discriminator", 0)) if cost else None,
            "discriminator_parameters": cost.get("parameters", {}).get("discriminator"),
            "train_flops_per_sample": cost.get("train_flops_per_sample"),
            "samples_per_s": summary.get("samples_per_s_median") if summary else None,
        })
        if (run / "generations.png").is_file():
            shutil.copyfile(run / "generations.png", out / f"{prefix}_{member}.png")
    lines = [f"Scale '{record['scale']}': {settings.get('about', '')}, sequences of {record.get('seq_len')} characters, "
             f"in {record.get('precision')}; PIXAR stage 2 adds {settings.get('stage2_steps', 0)} steps to stage 1. "
             "Commands: " + "; ".join(f"`{c}`" for c in record.get("commands", [])) + ".",
             "",
             ("Next-character accuracy is HotStart's metric (characters 1..L-1 of the same validation sequences from "
              "those before). For members that write pixels it is measured by reading each predicted character cell "
              "back as its nearest glyph (our reading; with PIXAR's 2 cells per position, the second is predicted 2 "
              "characters ahead); running text (pixelgpt-text) has no cell per character and no such accuracy. "
              "A model that predicts a blank cell everywhere scores the share of next characters that draw as a "
              "blank cell in its lines (spaces, specials, and at binary 8x8 punctuation too): the 'all blank' column, "
              "the floor a pixel writer's accuracy must clear to say anything; predicting the most frequent training "
              "character everywhere scores the 'most frequent' column, the floor of every member. A member within "
              f"{LEARNED_MARGIN * 100:.1f} pp of its higher floor 'learned nothing'. Ranked (our reading, for pixel "
              "writers that may know the next character and draw it blurred): the share of cells whose true glyph the "
              "model's own score puts first, or among its ten best, of every glyph the reader knows (squared distance "
              "for an MSE head, Bernoulli log-likelihood for PIXAR's); runs trained before it was logged have none. "
              "DualGPT's is its text path's; the pair column is its accuracy on the text that follows "
              f"a sequence's own line. Readability, over {settings.get('prompts', 0)} greedy continuations of "
              f"{record.get('seq_len', 0) // 4} patches each: read back by glyph, the share of generated cells read as "
              "a character whose ink overlaps its glyph's by IoU >= 0.5; read back by OCR (PP-OCRv4 through "
              "rapidocr-onnxruntime), the letters and digits read with a probability of at least 0.5 over the "
              "characters the generated width holds (one per em). "
              "Real text is the same measure of the prompts' real continuations, drawn and cut alike: the ceiling "
              "of each reader. Script agreement: the share of the readable characters in the prompt's script. "
              "Parameters are the language model's own; training FLOPs count a whole step, pixar-2's discriminator "
              "included."),
             "",
             ("| member | reads | writes | sequences seen | next-char accuracy (%) | all blank (%) | most frequent (%) | "
              "learned? | ranked top-1 / top-10 (%) | pair (%) | read back by | "
              "readability (%) | real text (%) | script agreement (%) | parameters | training FLOPs / sample | samples/s |"),
             "|---|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cost = (f"{r['parameters'] / 1e6:.2f}M | {r['train_flops_per_sample'] / 1e9:.2f} GFLOP"
                if r["parameters"] and r["train_flops_per_sample"] else " | ")
        speed = f"{r['samples_per_s']:.1f}" if r["samples_per_s"] else ""
        if r["member"] in ("index", "vision"):
            read_back = "IDs | IDs | IDs | IDs"
        else:
            read_back = (f"{r['reader'] or ''} | {percent(r['readability'])} | {percent(r['reference_readability'])} | "
                         f"{percent(r['language_agreement'])}")
        lines.append(f"| {r['member']} | {r['reads']} | {r['writes']} | {r['samples']:,}{'' if r['finished'] else ' (in progress)'} | "
                     f"{percent(r['val_acc'])} | {'' if r['blank_acc'] is None else percent(r['blank_acc'])} | "
                     f"{'' if r['most_frequent_acc'] is None else percent(r['most_frequent_acc'])} | {r['learned']} | "
                     f"{'' if r['rank1_acc'] is None else percent(r['rank1_acc']) + ' / ' + percent(r['rank10_acc'])} | "
                     f"{percent(r['val_pair_acc']) if r['member'] == 'dual' else ''} | "
                     f"{read_back} | {cost} | {speed} |")
    if curves:
        _accuracy_plot(curves, settings.get("samples", 0), out / f"{prefix}_accuracy.png")
        lines += ["", f"![next-character accuracy against sequences seen]({prefix}_accuracy.png)"]
        _accuracy_plot(curves, settings.get("samples", 0), out / f"{prefix}_data_efficiency.png",
                       characters=record.get("seq_len", 0))
        lines += ["", ("Data efficiency: the same accuracies against characters seen (log scale), with the point where "
                       "PixelGPT's paper sees it overtake PIXEL marked (about 200B patches; a 16 px Chinese character "
                       "takes about a patch): how far two cores are from where its paper says the method works."), "",
                  f"![next-character accuracy against characters seen]({prefix}_data_efficiency.png)"]
    for r in rows:
        if (out / f"{prefix}_{r['member']}.png").is_file():
            lines += ["", f"{r['member']}: greedy continuations (after the mark) of validation openings:", "",
                      f"![{r['member']} generations]({prefix}_{r['member']}.png)"]
    return "\n".join(lines), rows


LEARNED_MARGIN = 0.005
"""A member whose next-character accuracy is within this of its best floor (all blank, most frequent character)
learned nothing: 0.5 pp, the margin the unseen-character section uses for the same words."""


def _floors(run: Path) -> dict[str, float]:
    """The next-character accuracy of two predictors that read nothing, on the validation sequences the run's
    val_acc counts: every cell blank (char-cell pixel writers only: characters that draw blank, and the specials,
    read as one) and the most frequent training character everywhere (as it draws, for a pixel writer). Taken
    from the run's own evaluations where it logged them (floor_blank_acc, floor_most_frequent_acc), else
    measured from its prepared corpus; {} where neither is at hand."""
    import torch

    from ..analysis.readback import BLANK, GlyphReader
    from ..config import from_dict, load_yaml
    from ..plot import read_metrics

    logged = (read_metrics(run) or [{}])[-1]
    if "floor_most_frequent_acc" in logged:
        return {"blank": logged["floor_blank_acc"], "most_frequent": logged["floor_most_frequent_acc"]}
    saved = load_yaml(run / "config.yaml")
    try:
        corpus = PreparedCorpus.load(saved["data"])
    except (HotStartError, KeyError):
        return {}
    targets = corpus.sequences(corpus.val_index[: saved.get("train", {}).get("eval_sequences") or None])[:, 1:]
    counted = targets != 0  # <pad> never counts
    common = corpus.vocab.most_frequent
    line = (saved.get("model", {}).get("pixel") or saved.get("model", {})).get("line")
    if saved.get("objective") not in ("next-patch", "pixar") or not line or line.get("cell") != "char":
        return {"most_frequent": float(((targets == common) & counted).sum() / counted.sum().clamp(min=1))}
    reader = GlyphReader(from_dict(LineRenderConfig, line), corpus.vocab)
    drawn = reader.drawn_as(targets)
    share = lambda hit: float((hit & counted).sum() / counted.sum().clamp(min=1))
    return {"blank": share(drawn == BLANK), "most_frequent": share(drawn == reader.drawn_as(torch.tensor([common])))}


def learned(accuracy: float | None, floors: dict[str, float]) -> str:
    """'learned nothing' where the accuracy is within LEARNED_MARGIN of its best floor, 'above its floors' where
    it clears them, '' where there is no accuracy or no floor to judge it by."""
    if accuracy is None or not floors:
        return ""
    return "learned nothing" if accuracy <= max(floors.values()) + LEARNED_MARGIN else "above its floors"


def _accuracy_plot(curves: dict[str, list[dict[str, Any]]], stage1: int, path: Path, characters: int = 0) -> None:
    """Next-character accuracy against sequences seen, a line per member (pixar-2 after pixar-1's budget); with
    `characters` (the sequences' length), against characters seen on a log axis, PixelGPT's paper scale marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for member, rows in curves.items():
        offset = stage1 if member == "pixar-2" else 0
        points = [((offset + r["samples"]) * (characters or 1), 100 * r["val_acc"]) for r in rows
                  if r.get("val_acc") is not None and (r["samples"] > 0 or not characters)]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=member)
    if characters:
        from ..plot import mark_scales
        from .paper import PAPER_SCALES

        mark_scales(ax, PAPER_SCALES["writers"])
    ax.set_xlabel("characters seen (log)" if characters else "sequences seen")
    ax.set_ylabel("next-character accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
