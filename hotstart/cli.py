"""Command-line entry points: `hotstart render | prepare | train | eval | embeddings | sweep | report | ...`.

Each subcommand maps straight onto one library function; this module only parses arguments into
the config dataclasses. A HotStartError (bad input the user can fix) is printed on one line and
exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import HotStartError
from .options import (
    check_text_arguments,
    float_range,
    folder_lock,
    int_list,
    int_range,
    png_file,
    positive_int,
    write_file,
)

if TYPE_CHECKING:  # annotations only; the CLI imports heavy modules when a command runs
    from .render.glyph import RenderConfig
    from .training.dual_run import DualRunConfig
    from .training.mae_run import MAERunConfig
    from .training.mlm_run import MLMRunConfig
    from .training.next_patch_run import NextPatchRunConfig
    from .training.pixar_run import PixarRunConfig
    from .training.run import RunConfig


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), like every other error here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Raise the message as a HotStartError instead of printing usage and exiting."""
        raise HotStartError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_render_options(p: argparse.ArgumentParser, res_default: int | None = 8) -> None:
    """Options of RenderConfig, shared by render, train and eval."""
    p.add_argument("--res", type=int, default=res_default, help="thumbnail side R in pixels, 4..128 (default 8)")
    p.add_argument("--crop", type=float, help="fraction of ink rows kept from the top: 1.0, 0.8, 0.5 = Vision-100/80/50%%")
    p.add_argument("--margin", type=float, help="blank margin as a fraction of R on each side (default 0.1)")
    p.add_argument("--keep", help="pixels of the ink box drawn: all (default), centre (the --centre-share of them nearest "
                                  "its middle, whole rings) or border (the rest); the crop generalised to masks")
    p.add_argument("--centre-share", type=float, help="share of the ink box that is its centre, for --keep (default 0.3)")
    p.add_argument("--font", help="TTF/OTF/TTC font file (default: Noto Sans CJK SC, installed with hotstart)")
    p.add_argument("--face", type=int, help="face index inside a font collection (default: the SC face / 0)")
    p.add_argument("--missing", help="characters the font lacks: blank (default), error, fallback")
    p.add_argument("--fallback-font", action="append", dest="fallback_fonts",
                   help="font tried for characters the main font lacks (repeatable; PATH or PATH#FACE)")


def _render_config(args: argparse.Namespace, base: RenderConfig | None = None) -> RenderConfig:
    """RenderConfig from the shared render options, on top of `base`."""
    from .config import replace
    from .render.glyph import RenderConfig

    cfg = replace(base or RenderConfig(), res=args.res, crop=args.crop, margin=args.margin, keep=args.keep,
                  centre_share=args.centre_share, font=args.font,
                  face=args.face, missing=args.missing, fallback_fonts=args.fallback_fonts)
    cfg.validate()
    return cfg


def cmd_render(args: argparse.Namespace) -> None:
    """Write a PNG grid of glyphs at several resolutions and crops (nearest-neighbour upscaled)."""
    from .render.glyph import render_grid

    cfg = _render_config(args)
    resolutions = sorted(set(args.resolutions)) if args.resolutions else None
    crops = args.crops or (1.0, 0.8, 0.5)
    path = render_grid(args.chars, args.out, cfg, resolutions=resolutions, crops=crops)
    print(f"wrote {path}")


def cmd_render_text(args: argparse.Namespace) -> None:
    """Render one line of text as PIXEL-style patches (a line `--patch` px high, cut into squares) to a PNG."""
    from .render.line import LineRenderConfig, LineRenderer, has_visible, line_image

    if not has_visible(args.text):
        raise HotStartError("--text has nothing to draw (it is empty or only spaces and format characters); "
                            "pass at least one visible character")
    cfg = LineRenderConfig(patch=args.patch, mode=args.mode, cell=args.cell, max_patches=args.max_patches,
                           font=args.font, face=args.face, fallback_fonts=args.fallback_fonts or [],
                           missing=args.missing, binary_draw=args.binary_draw, edge=args.edge)
    renderer = LineRenderer(cfg)
    batch = renderer.render_batch([args.text])
    n = int(batch.lengths[0])
    image = line_image(batch.patches[0, :n])
    if args.zoom > 1:
        image = image.resize((image.width * args.zoom, image.height * args.zoom), resample=0)  # nearest
    out = write_file(args.out, image.save)
    fonts = ", ".join(f"{name} {count}" for name, count in batch.fonts_used.items()) or "none"
    print(f"wrote {out}: {n - 1} text patches + 1 end-of-sequence patch of {cfg.patch}x{cfg.patch} ({cfg.mode}, "
          f"{cfg.cell} cells); characters per font: {fonts}")
    if batch.truncated[0]:
        print(f"warning: {batch.truncated[0]} of {len(args.text)} characters cut: the line reached "
              f"--max-patches {cfg.max_patches}", file=sys.stderr)
    if batch.missing:
        print(f"warning: {sum(batch.missing.values())} character(s) in no font, drawn blank: "
              f"{''.join(batch.missing)}; add --fallback-font PATH", file=sys.stderr)
    if batch.clipped:
        print(f"warning: {sum(batch.clipped.values())} character(s) or shaped run(s) lost ink at the line's top or "
              f"bottom edge: {', '.join(batch.clipped)}; use --edge fit to keep it inside", file=sys.stderr)


def cmd_prepare(args: argparse.Namespace) -> None:
    """Clean, count and encode a corpus into a prepared folder (vocabulary, memmap, splits)."""
    from .data.prepared import PrepareConfig, prepare
    from .flags import command_config

    cfg: PrepareConfig = command_config("prepare", args, corpus=args.corpus[0], extra_corpora=args.corpus[1:])
    with folder_lock(args.out, "prepared corpus folder"):
        prepare(cfg, args.out, progress=not args.quiet, overwrite=args.overwrite)


def _objective_options() -> dict[str, dict[str, tuple[str, ...]]]:
    """objective -> {flag destination: where it goes in that objective's run config}, from the generated table
    (flags.py; options left out keep the file's or preset's value)."""
    from .flags import read_table

    return {objective: {dest: tuple(path) for dest, path in paths.items()}
            for objective, paths in read_table()["train"]["paths"].items()}


def _run_config(args: argparse.Namespace) -> RunConfig | MAERunConfig | MLMRunConfig | NextPatchRunConfig | PixarRunConfig | DualRunConfig:
    """The run config from defaults, then --preset, then --config FILE, then the options given on the command line."""
    from .config import from_dict, load_yaml, to_dict
    from .flags import given_values, read_table
    from .models.decoder import decoder_size
    from .presets import PRESETS, deep_merge
    from .training.config import TrainConfig, line_train_defaults
    from .training.dual_run import DualRunConfig
    from .training.mae_run import MAERunConfig
    from .training.mlm_run import MLMRunConfig
    from .training.next_patch_run import NextPatchRunConfig
    from .training.pixar_run import PixarRunConfig, pixar_model_defaults
    from .training.run import RunConfig

    loaded = load_yaml(args.config) if args.config is not None else {}
    objective = args.objective or loaded.get("objective") or "next-char"
    options = _objective_options()
    if objective not in options:
        raise HotStartError(f"unknown objective '{objective}'; choose one of {', '.join(options)}")
    next_char = objective == "next-char"
    paths = options[objective]
    others = set().union(*options.values()) - set(paths) - {"size"}  # a decoder, MAE or BERT size
    for dest in sorted(others):
        value = getattr(args, dest, None)
        if value is not None and not (dest.startswith("no_") and value is False):  # a --no-X switch not given
            raise HotStartError(f"--{dest.replace('_', '-')} is not an option of --objective {objective} runs; "
                                "drop it, or choose the objective it belongs to")
    if not next_char:
        # the same training settings for both encoders, so "the same text and budget" holds by default
        data: dict = {"data": None, "objective": objective, "model": {}, "train": to_dict(line_train_defaults())}
        if objective == "pixar":  # a new stage 2's discriminator judges what generation emits (saved: soft)
            data["model"] = to_dict(pixar_model_defaults())
            data["adversarial"] = {"disc_sees": "emitted"}
        if objective != "mlm":  # a new line run draws binary lines aliased and keeps ink inside the line
            # (a saved config without these fields: threshold and clip, as it trained)
            node = data["model"].setdefault("pixel", {}) if objective == "dual" else data["model"]
            node.setdefault("line", {}).update(binary_draw="aliased", edge="fit")
        if args.preset is not None:
            raise HotStartError(f"--preset names a next-char experiment of the HotStart paper; drop it for --objective {objective}")
    else:
        data = {"data": None, "model": {"vocab_size": 0, "decoder": to_dict(decoder_size("small-cpu"))},
                "train": to_dict(TrainConfig())}
    if args.preset is not None:
        if args.preset not in PRESETS:
            raise HotStartError(f"unknown preset '{args.preset}'; choose one of {', '.join(PRESETS)}")
        data = deep_merge(data, PRESETS[args.preset])
    data = deep_merge(data, loaded)
    if args.size is not None and next_char:
        data["model"]["decoder"] = to_dict(decoder_size(args.size, data["model"]["decoder"].get("kind", "gpt2")))
    for path, value in given_values(read_table()["train"], paths, args):
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    if data["data"] is None:
        raise HotStartError("no corpus: pass --data DIR (a folder written by `hotstart prepare`) or set data: in --config")
    cfg = from_dict({"next-char": RunConfig, "mae": MAERunConfig, "mlm": MLMRunConfig,
                     "next-patch": NextPatchRunConfig, "pixar": PixarRunConfig, "dual": DualRunConfig}[objective], data)
    if next_char:
        cfg.model.validate()
        cfg.model.decoder.validate()
    else:
        cfg.model.validate()
    return cfg


def cmd_train(args: argparse.Namespace) -> None:
    """Train a model on a prepared corpus: HotStart's index or vision LM (next-char, the default) or
    PIXEL-M4's masked autoencoder over rendered lines (--objective mae) or its index baseline, a
    character BERT (--objective mlm) or PixelGPT's next-patch decoder (--objective next-patch); writes a
    run folder."""
    from .training.loop import train

    cfg = _run_config(args)
    if args.resume and not (Path(args.out) / "config.yaml").is_file():
        raise HotStartError(f"nothing to resume: {args.out} holds no run (no config.yaml); drop --resume to start one there")
    with folder_lock(args.out, "run folder"):
        summary = train(cfg, args.out, progress=not args.quiet, overwrite=args.overwrite, resume=args.resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    final = summary["final"]
    accuracy = {"val_acc": final["val_acc"]} if "val_acc" in final else {}
    print(json.dumps({"run": args.out, "samples": summary["samples"], "stop_reason": summary["stop_reason"],
                      **accuracy, "val_loss": final["val_loss"], "precision": summary["environment"]["precision"]}))


def cmd_finetune(args: argparse.Namespace) -> None:
    """Fine-tune a pretrained run (next-char, mae or mlm) as a document classifier: accuracy and
    macro-F1 on the task's test documents per seed and training-set size; writes OUT/finetune.json."""
    from .flags import command_config
    from .tasks.classification import FinetuneConfig, finetune

    cfg: FinetuneConfig = command_config("finetune", args)
    with folder_lock(args.out, "fine-tuning folder"):
        result = finetune(args.run, cfg, args.out, progress=not args.quiet, overwrite=args.overwrite)
    for point in result["curve"]:
        print(f"{result['encoder']} {point['train_examples']:>6,} examples: test accuracy {point['test_acc']:.4f} "
              f"+/- {point['test_acc_sd']:.4f}, macro-F1 {point['test_macro_f1']:.4f} +/- {point['test_macro_f1_sd']:.4f} "
              f"({point['seeds']} seeds)")


def cmd_eval(args: argparse.Namespace) -> None:
    """Evaluate a run on its validation set; for vision runs, re-render glyphs to test robustness."""
    from .training.evaluate import evaluate_run

    if not Path(args.run).exists():
        raise HotStartError(f"run folder {args.run} does not exist")
    options = ("res", "crop", "margin", "keep", "centre_share", "font", "face", "missing", "fallback_fonts")
    overrides = {k: getattr(args, k) for k in options if getattr(args, k) is not None}
    perturbation = None
    if args.noise or args.stroke_dropout or args.confusable_share:
        from .render.perturb import Perturbation

        perturbation = Perturbation(noise=args.noise, stroke_dropout=args.stroke_dropout,
                                    confusable_share=args.confusable_share, seed=args.perturb_seed)
    result = evaluate_run(args.run, checkpoint=args.checkpoint, sequences=args.sequences,
                          render_overrides=overrides, device=args.device, precision=args.precision,
                          progress=not args.quiet, perturbation=perturbation)
    print(json_line(result))


def cmd_embeddings(args: argparse.Namespace) -> None:
    """How distinct each character's input vector is: mean cosine, near-duplicates, effective rank."""
    from .experiments.embeddings import run_embedding_spread

    for run in args.runs:
        if not Path(run).exists():
            raise HotStartError(f"run folder {run} does not exist")
    for run in args.runs:
        for checkpoint in args.checkpoint:
            result = run_embedding_spread(run, checkpoint=checkpoint, top=args.top, progress=not args.quiet,
                                          save=not args.no_save)
            print(json.dumps(result, ensure_ascii=False), flush=True)


def cmd_export(args: argparse.Namespace) -> None:
    """Export a run to a folder that plain transformers loads: a causal LM (next-char), ViTMAEForPreTraining (mae),
    BertForMaskedLM (mlm), or a decoder with its patch embedding and head (next-patch, pixar, dual)."""
    from .use.export import export_run

    with folder_lock(args.out, "export folder"):
        path = export_run(args.run, args.out, checkpoint=args.checkpoint, overwrite=args.overwrite)
    print(f"wrote {path}; {path / 'README.md'} says how to load it and draw its input")


def cmd_generate(args: argparse.Namespace) -> None:
    """Generate from a run: a next-char run streams the characters it samples; a pixel LM (next-patch,
    pixar, dual) draws the prompt and its greedy continuation as one image (--out) and reads the
    generated patches back as text (nearest glyphs for char cells, OCR for running text)."""
    from .training.run_folder import open_run

    if open_run(args.run).kind.writes == "characters":
        from .training.run import load_run
        from .use.generate import generate, stream

        run = load_run(args.run, checkpoint=args.checkpoint, progress=False)
        known = set(run.corpus.vocab.chars)
        if unknown := "".join(dict.fromkeys(c for c in args.prompt if c not in known)):
            print(f"warning: {len(unknown)} character(s) of --prompt are not in the run's vocabulary and are read as "
                  f"<unk>: {unknown}", file=sys.stderr)
        print(args.prompt, end="", flush=True)
        stream(generate(run.model, run.corpus.vocab, args.prompt, max_new=args.max_new, temperature=args.temperature,
                        top_k=args.top_k, seed=args.seed))
        if args.out:
            print(f"(--out draws a pixel LM's generation; {args.run} writes characters, printed above)", file=sys.stderr)
        return
    from .analysis.readback import line_reader
    from .use.generate import (
        continuation_image,
        generate_line,
        load_pixel_run,
        read_generation,
    )

    run = load_pixel_run(args.run, checkpoint=args.checkpoint)
    if not args.out:
        raise HotStartError(f"{args.run} is a pixel LM, which writes an image; pass --out FILE.png")
    grown, prompt_len = generate_line(run, args.prompt, args.max_new)
    result = {"run": args.run, "out": args.out, "prompt_patches": prompt_len, "generated_patches": grown.shape[0] - prompt_len}
    try:
        reader = line_reader(run.pixel_config.line, run.vocab)
    except HotStartError as exc:  # running text without the OCR extra: the image is still the result
        print(f"note: the generation is not read back as text: {exc}", file=sys.stderr)
    else:
        result.update(read_generation(reader, grown, prompt_len, args.prompt))
    title = f"{Path(args.run).name} ({args.checkpoint}): prompt | greedy continuation"
    write_file(args.out, continuation_image(grown, prompt_len, title).save)
    print(json_line(result))


def cmd_plot(args: argparse.Namespace) -> None:
    """Plot a metric of one or more runs against training samples seen, on one figure."""
    from .plot import plot_curves, read_metrics

    curves = {}
    for run in args.runs:
        if not (Path(run) / "metrics.jsonl").is_file():
            raise HotStartError(f"{run} has no metrics.jsonl; pass run folders written by `hotstart train`")
        curves[Path(run).name] = read_metrics(run)
    unknown = [name for name, rows in curves.items() if rows and args.metric not in rows[0]]
    if unknown:
        raise HotStartError(f"metric '{args.metric}' is not in {', '.join(unknown)}; metrics: {', '.join(next(iter(curves.values()))[0])}")
    print(f"wrote {plot_curves(curves, args.out, metric=args.metric, title=args.title or '')}")


def cmd_presets(args: argparse.Namespace) -> None:
    """List the named run presets (`hotstart train --preset NAME`) with their settings."""
    from .presets import PRESETS

    for name, settings in PRESETS.items():
        print(f"{name}: {json.dumps(settings)}")


def cmd_params(args: argparse.Namespace) -> None:
    """Print trainable parameters per part (input path, encoder, adapter, decoder, head) for every model."""
    from .data.prepared import PreparedCorpus
    from .models.hotstart_lm import parameter_table

    vocab_size = len(PreparedCorpus.load(args.data).vocab) if args.data else args.vocab_size
    rows = parameter_table(args.size, vocab_size, args.res)
    parts = ("input", "input.encoder", "input.adapter", "decoder", "lm_head", "total")
    print(f"decoder {args.size}, vocabulary {vocab_size:,}, glyphs {args.res}x{args.res} (millions of parameters)")
    print(f"| model | {' | '.join(parts)} |\n|---|{'---:|' * len(parts)}")
    for row in rows:
        cells = " | ".join(f"{row[p] / 1e6:.3f}" if p in row else "" for p in parts)
        print(f"| {row['model']} | {cells} |")


def cmd_demo(args: argparse.Namespace) -> None:
    """Prepare the built-in corpus, train index and 8x8 vision models, print the hot-start table; with
    --family, pretrain a tiny pixel MAE and its character BERT, fine-tune both on iNews sentiment, print
    their table."""
    from .experiments.demo import DemoConfig, run_demo

    if args.family:
        from .experiments.family import run_family
        from .experiments.family_report import family_section

        folder = Path(args.out) / "family"
        run_family(folder, "demo", progress=not args.quiet, command=f"hotstart demo --family --out {args.out}")
        text, _, _ = family_section(folder, folder)
        (folder / "family.md").write_text(text + "\n", encoding="utf-8")
        print(f"\n{text}\n\nwrote {folder / 'family.md'} and its plots in {folder}")
        return
    run_demo(DemoConfig(out=args.out, max_samples=args.max_samples, size=args.size, encoder=args.encoder,
                        res=args.res, eval_sequences=args.eval_sequences, seed=args.seed, fresh=args.fresh),
             progress=not args.quiet)


def json_line(obj: Any) -> str:
    """`obj` as one line of strict JSON: a NaN or infinity (say the readability of a generation with no
    characters) becomes null, which every JSON parser reads; Python's default NaN is not JSON."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    return json.dumps(clean(obj), ensure_ascii=False, allow_nan=False)


def cmd_sweep(args: argparse.Namespace) -> None:
    """Train a named grid of runs (rq1-rq4, efficiency, ablations, paper) at a scale; rerun to resume."""
    from .experiments.sweep import SweepConfig, list_runs, run_sweep

    if args.grid == "family":
        _family(args)
        return
    if args.grid == "autoregressive":
        _autoregressive(args)
        return
    if args.grid == "attribution":
        from .experiments.attribution import run_attribution

        _member_grid(args, "attribution", run_attribution, "the attribution grid (one seed per member)", "grid folder")
        return
    if args.grid == "compression":
        _compression(args)
        return
    if args.grid in ("fonts", "robustness"):
        from .experiments.fonts import run_fonts, run_robustness

        _member_grid(args, args.grid, run_fonts if args.grid == "fonts" else run_robustness,
                     f"the {args.grid} grid (one seed per member)", "grid folder")
        return
    seeds = int_list(args.seeds, "--seeds", "0,1,2") if args.seeds else None
    if args.list:
        print(list_runs(args.grid, args.scale, args.out, seeds))
        return
    if not args.out:
        raise HotStartError("hotstart sweep needs --out DIR (the sweep folder; rerunning with it resumes)")
    command = " ".join(["hotstart", "sweep", args.grid, "--scale", args.scale, "--out", args.out]
                       + (["--data", args.data] if args.data else []) + (["--seeds", args.seeds] if args.seeds else []))
    with folder_lock(args.out, "sweep folder"):
        statuses = run_sweep(SweepConfig(grid=args.grid, out=args.out, scale=args.scale, data=args.data, seeds=seeds,
                                         only=args.only or [], throughput_repeats=args.throughput_repeats,
                                         device=args.device, precision=args.precision),
                             progress=not args.quiet, command=command)
    failed = [s["run"] for s in statuses if s["status"].startswith("failed")]
    if failed:  # the other runs finished; a script must still see that the grid is incomplete
        raise HotStartError(f"{len(failed)} of {len(statuses)} runs failed ({', '.join(failed)}); see the lines above")


def _compression(args: argparse.Namespace) -> None:
    """`hotstart sweep compression`: lines squeezed by each rendering strategy and read back; nothing is trained."""
    from .experiments.compression import list_settings, run_compression

    for option, value in (("--seeds", args.seeds), ("--data", args.data), ("--corpus", args.corpus)):
        if value:
            raise HotStartError(f"{option} is not an option of the compression grid (it reads the built-in inews and "
                                "kjv text and trains nothing); drop it")
    if args.list:
        print(list_settings(args.scale, args.out))
        return
    if not args.out:
        raise HotStartError("hotstart sweep compression needs --out DIR (the grid folder; rerunning with it resumes)")
    command = " ".join(["hotstart", "sweep", "compression", "--scale", args.scale, "--out", args.out]
                       + (["--only", *args.only] if args.only else []))
    with folder_lock(args.out, "grid folder"):
        run_compression(args.out, args.scale, strategies=args.only, progress=not args.quiet, command=command)


def _family(args: argparse.Namespace) -> None:
    """`hotstart sweep family`: pretrain every member on the same text and budget, then fine-tune each."""
    from .experiments.family import run_family

    _member_grid(args, "family", run_family, "the family grid (its scale sets the fine-tuning seeds)", "family folder")


def _autoregressive(args: argparse.Namespace) -> None:
    """`hotstart sweep autoregressive`: the autoregressive LMs on one decoder and budget, and their generations read back."""
    from .experiments.autoregressive import run_autoregressive

    _member_grid(args, "autoregressive", run_autoregressive, "the autoregressive grid (one seed per member)", "grid folder")


def _grid_members(module: str, prefix: str) -> Any:
    """(run-name prefix, members) of a member grid, its module imported when asked."""
    return lambda: (prefix, importlib.import_module(f"hotstart.experiments.{module}").MEMBERS)


_MEMBER_RUNS = {"family": _grid_members("family", "family-"), "autoregressive": _grid_members("autoregressive", "auto-"),
                "fonts": _grid_members("fonts", "fonts-"), "robustness": _grid_members("fonts", "fonts-"),
                "attribution": _grid_members("attribution", "attribution-")}
"""Each member grid's run folders: runs/PREFIX+MEMBER (robustness reads the fonts grid's runs)."""


def _member_grid(args: argparse.Namespace, grid: str, run: Any, which: str, folder: str) -> None:
    """A grid of named members (family, autoregressive, fonts): no --seeds or --list, an --out to resume in,
    every member run or resumed by `run`, one status line each."""
    if args.seeds:
        raise HotStartError(f"--seeds is not an option of {which}; drop it")
    if args.list:  # the members' runs, and with --out how far each has got
        from .experiments.sweep import list_named_runs

        prefix, members = _MEMBER_RUNS[grid]()
        print(list_named_runs([f"{prefix}{member}" for member in members], args.out))
        return
    if not args.out:
        raise HotStartError(f"hotstart sweep {grid} needs --out DIR (the {folder}; rerunning with it resumes)")
    extra = {}
    if args.corpus:
        from .data.corpus import BUILTIN

        if grid not in ("family", "autoregressive"):
            raise HotStartError(f"--corpus is an option of the family and autoregressive grids, not of {which}; drop it")
        if args.data:
            raise HotStartError("--corpus names a built-in corpus and --data a prepared one; pass one of them")
        if args.corpus not in BUILTIN:
            raise HotStartError(f"unknown built-in corpus '{args.corpus}'; choose one of {', '.join(BUILTIN)}")
        extra["corpus"] = args.corpus
    command = " ".join(["hotstart", "sweep", grid, "--scale", args.scale, "--out", args.out]
                       + (["--data", args.data] if args.data else []) + (["--corpus", args.corpus] if args.corpus else []))
    statuses = run(args.out, args.scale, data=args.data, members=args.only, precision=args.precision,
                   device=args.device, progress=not args.quiet, command=command, **extra)
    for status in statuses:
        print(f"{status['member']}: {status['status']}")


def cmd_report(args: argparse.Namespace) -> None:
    """Write report.md (the paper's tables with its numbers beside ours), CSVs and plots from run/sweep folders."""
    from .experiments.report import write_report

    command = " ".join(["hotstart", "report", *args.runs, "--out", args.out])
    path = write_report(args.runs, args.out, command=command)
    print(f"wrote {path} and its CSVs and plots in {path.parent}")


def _add_run_argument(p: argparse.ArgumentParser) -> None:
    """The positional run folder and --checkpoint, shared by eval, export and generate."""
    p.add_argument("run", help="run folder")
    p.add_argument("--checkpoint", default="best",
                   help="best (lowest val loss, default) | last | init (the run's starting weights, rebuilt from its seed)")


def build_parser() -> argparse.ArgumentParser:
    """The `hotstart` argument parser with all subcommands."""
    from .flags import add_flags, read_table
    from .options import CHECKS
    from .render.line import MAX_LINE_PATCHES

    flags = read_table()
    parser = _Parser(prog="hotstart", description="Pixel language modelling: character LMs that read glyphs.")
    parser.add_argument("--version", action="version", version=f"hotstart {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("render", help=cmd_render.__doc__, description=cmd_render.__doc__)
    p.add_argument("--chars", required=True, help="characters to render, e.g. 山水中国")
    _add_render_options(p)
    p.add_argument("--resolutions", type=int, nargs="+", help="rows at these resolutions (default: --res and 4 8 20 40)")
    p.add_argument("--crops", type=float, nargs="+", help="rows at these crops (default 1.0 0.8 0.5)")
    p.add_argument("--out", required=True, type=png_file, help="PNG file to write")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("render-text", help=cmd_render_text.__doc__, description=cmd_render_text.__doc__)
    p.add_argument("--text", required=True, help="one line of text (any script the font chain covers)")
    p.add_argument("--patch", type=int, default=16, help="patch side and line height in pixels (default 16; PIXAR: 8)")
    p.add_argument("--mode", default="grey", help="grey (default), binary (PIXAR) or rgb (PixelGPT)")
    p.add_argument("--binary-draw", default="aliased", help="binary: aliased (default: glyphs drawn without "
                                                            "anti-aliasing, thin strokes kept) | threshold (grey cut at 0.5)")
    p.add_argument("--edge", default="fit", help="ink that would leave the line: fit (default: the character or "
                   "shaped run moved inside, drawn smaller if taller than the line) | clip (cut and counted)")
    p.add_argument("--cell", default="free", help="free: running text (default); char: one character per patch; "
                   "bigram: two per patch; words: each word from a patch boundary")
    p.add_argument("--max-patches", type=int_range(2, MAX_LINE_PATCHES), default=529,
                   help=f"patches per line, end patch included, 2 to {MAX_LINE_PATCHES:,} (default 529)")
    p.add_argument("--font", help="primary font file (default: Noto Sans CJK SC: Han, Latin, Cyrillic)")
    p.add_argument("--face", type=int, help="face index inside a font collection")
    p.add_argument("--fallback-font", action="append", dest="fallback_fonts",
                   help="font tried for characters the primary lacks, before the installed script fonts (repeatable)")
    p.add_argument("--missing", default="blank", help="a character in no font: blank (default, counted) or error")
    p.add_argument("--zoom", type=int_range(1, 64), default=1,
                   help="scale the PNG up by this factor, nearest neighbour, 1 to 64 (default 1)")
    p.add_argument("--out", required=True, type=png_file, help="PNG file to write")
    p.set_defaults(func=cmd_render_text)

    p = sub.add_parser("prepare", help=cmd_prepare.__doc__, description=cmd_prepare.__doc__)
    p.add_argument("--corpus", required=True, action="append",
                   help="'inews' (built in), another built-in name, or a file/folder; repeat it to prepare several "
                        "sources into one folder (validation drawn equally from each language)")
    add_flags(p, flags["prepare"], CHECKS)
    p.add_argument("--overwrite", action="store_true", help="replace an existing prepared folder")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help=cmd_train.__doc__, description=cmd_train.__doc__ + (
        " Settings come from the defaults, then --preset, then --config, then the options given here. Every other "
        "option is a field of the objective's run config, generated from its dataclass (hotstart/flags.py); an option "
        "that the objective's config lacks is refused."))
    p.add_argument("--data", help="folder written by `hotstart prepare`")
    p.add_argument("--objective", help="next-char (default): HotStart's LM | mae: PIXEL-M4's masked autoencoder "
                                       "over rendered lines, one line per corpus sequence | mlm: a character BERT "
                                       "the size of the MAE's encoder, by masked-language modelling | next-patch: PixelGPT, a decoder "
                                       "that predicts each next patch of a rendered line | pixar: PIXAR, next-patch over binary 8x8 lines, "
                                       "by likelihood, then (--stage 2) adversarially | dual: DualGPT, one decoder "
                                       "on character IDs, lines, and lines paired with their text")
    p.add_argument("--config", help="YAML run config (e.g. a run folder's config.yaml); options given here override it")
    p.add_argument("--preset", help="named settings of a paper experiment (see `hotstart presets`)")
    p.add_argument("--size", help="tiny | small-cpu (4x256, default) | medium-cpu (6x384) | gpt2-small (12x768); "
                                  "mae, mlm: tiny | small-cpu (default) | base (ViT-MAE base, PIXEL-M4's)")
    add_flags(p, flags["train"], CHECKS)
    p.add_argument("--out", required=True, help="run folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out from its last evaluation")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help=cmd_finetune.__doc__, description=cmd_finetune.__doc__)
    p.add_argument("run", help="pretraining run folder (hotstart train: next-char, mae or mlm)")
    add_flags(p, flags["finetune"], CHECKS)
    p.add_argument("--out", required=True, help="folder for finetune.json (a rerun with the same settings resumes)")
    p.add_argument("--overwrite", action="store_true", help="start again in an --out that holds other settings")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("eval", help=cmd_eval.__doc__, description=cmd_eval.__doc__)
    _add_run_argument(p)
    _add_render_options(p, res_default=None)
    p.add_argument("--sequences", type=positive_int, help="evaluate on the first N validation sequences (default all)")
    g = p.add_argument_group("perturbed input (robustness; render/perturb.py)")
    g.add_argument("--noise", type=float, default=0.0, help="vision: std of Gaussian noise added to every glyph's pixels")
    g.add_argument("--stroke-dropout", type=float, default=0.0, help="vision: probability that an inked glyph pixel is blanked")
    g.add_argument("--confusable-share", type=float, default=0.0,
                   help="share of input characters swapped for their look-alike (nearest glyph at 32x32); targets stay")
    g.add_argument("--perturb-seed", type=int, default=0, help="seed of the noise, dropout and swaps (default 0)")
    p.add_argument("--precision", default="auto", help="auto | bf16 | fp16 | fp32")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("embeddings", help=cmd_embeddings.__doc__, description=cmd_embeddings.__doc__)
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--checkpoint", nargs="+", default=["init", "best"], choices=["init", "best", "last"],
                   help="which weights, one line each (default: init best)")
    p.add_argument("--top", type=positive_int, default=1000, help="also over the N most frequent characters (default 1000)")
    p.add_argument("--no-save", action="store_true", help="only print; do not keep the result in RUN/embeddings.json")
    p.set_defaults(func=cmd_embeddings)

    p = sub.add_parser("export", help=cmd_export.__doc__, description=cmd_export.__doc__)
    _add_run_argument(p)
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("generate", help=cmd_generate.__doc__, description=cmd_generate.__doc__)
    _add_run_argument(p)
    p.add_argument("--prompt", default="", help="text to continue (default: start a new document)")
    p.add_argument("--max-new", type=positive_int, default=100,
                   help="characters (a pixel LM: patches) to generate (default 100)")
    p.add_argument("--temperature", type=float_range(0.0), default=1.0, help="sampling temperature; 0 = greedy (default 1)")
    p.add_argument("--top-k", type=positive_int, help="sample among the k most likely characters")
    p.add_argument("--seed", type=int, help="seed for reproducible sampling")
    p.add_argument("--out", type=png_file, help="pixel LM runs: PNG of the prompt and its continuation (required for them)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("plot", help=cmd_plot.__doc__, description=cmd_plot.__doc__)
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--metric", default="val_acc", help="column of metrics.jsonl (default val_acc)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--out", required=True, type=png_file, help="PNG to write")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("presets", help=cmd_presets.__doc__, description=cmd_presets.__doc__)
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("params", help=cmd_params.__doc__, description=cmd_params.__doc__)
    p.add_argument("--size", default="small-cpu", help="decoder size (default small-cpu)")
    p.add_argument("--data", help="prepared corpus whose vocabulary size to use")
    p.add_argument("--vocab-size", type=positive_int, default=5162, help="vocabulary size without --data (default 5162)")
    p.add_argument("--res", type=int, default=8, help="glyph resolution (default 8)")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("sweep", help=cmd_sweep.__doc__, description=cmd_sweep.__doc__ + (
        " Grids: rq1 (index vs vision 8x8), rq2 (hot start: index, 8x8, 40x40, several seeds), rq3 "
        "(resolutions 4-80), rq4 (crops x resolutions), efficiency (index vs orig/opt/simp), ablations "
        "(schedule, embedding init, pixel and output norm, encoder and decoder size), paper (all), explain "
        "(what the hot start needs), unseen (5% of the characters never trained on: index, vision, vision with "
        "the glyph head), controls (pixels or parametrisation: the 40x40-unsqueezed lead against permuted glyphs, "
        "noise images and an adapter started at the index table's scale), family (HotStart index and vision, PIXEL-M4's MAE and its character BERT "
        "pretrained alike, then fine-tuned on iNews sentiment), autoregressive (index, vision, PixelGPT, PIXAR stages "
        "1 and 2, DualGPT on one Llama-style decoder and budget, generations read back), fonts (index, vision on "
        "the default font, vision on a mix of fonts, each evaluated in every typeface of the scale), robustness (the "
        "fonts grid's members, in its folder, evaluated with noisy glyphs, stroke dropout and look-alike characters), "
        "attribution (vision at 4x4, 8x8 and 20x20: which pixels of a glyph the prediction rests on, by integrated "
        "gradients and occlusion, and the accuracy with only the centre or only the border drawn), compression (no "
        "training: lines drawn by each rendering strategy at several patch and font sizes, the characters each patch "
        "carries against how well an OCR engine and the glyph reader read them back). "
        "Scales: smoke (minutes, checks the machinery), cpu (hours on a CPU), paper (GPT-2 small, a GPU); "
        "family: smoke | demo | cpu; autoregressive, fonts, robustness, attribution, compression: smoke | cpu."))
    p.add_argument("grid", help="rq1 | rq2 | rq3 | rq4 | efficiency | ablations | paper | explain | unseen | controls | family | "
                                "autoregressive | fonts | robustness | attribution | compression")
    p.add_argument("--scale", default="cpu", help="smoke | cpu (default) | paper")
    p.add_argument("--out", help="sweep folder (runs/, data/, sweep.json); rerun with it to resume")
    p.add_argument("--data", help="a folder from `hotstart prepare` (default: the built-in corpus, prepared into OUT/data)")
    p.add_argument("--corpus", help="family, autoregressive: the built-in corpus prepared into OUT/data (default inews; "
                                    "kjv for English, from the languages extra); family members of a corpus other than "
                                    "inews only pretrain: the inews task is Chinese")
    p.add_argument("--seeds", help="seeds of the hot-start runs, e.g. 0,1,2 (default: the scale's)")
    p.add_argument("--only", nargs="+", help="run only runs whose names contain one of these strings "
                                             "(family: members index, vision, mae, mae-cells, mlm; autoregressive: index, vision, "
                                             "pixelgpt, pixelgpt-text, pixar-1, pixar-2, dual; fonts, robustness: "
                                             "index, vision, vision-mix; attribution: vision-4x4, vision-8x8, "
                                             "vision-20x20; compression: the strategies free, bigram, char, words)")
    p.add_argument("--list", action="store_true", help="list the grid's runs (and their progress with --out); train nothing")
    p.add_argument("--throughput-repeats", type=positive_int, default=5, help="efficiency: alternating timing rounds (default 5)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", help="auto | bf16 | fp16 | fp32")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__)
    p.add_argument("runs", nargs="+", help="sweep folders (with runs/) or run folders")
    p.add_argument("--out", required=True, help="folder for report.md, the CSVs and the PNGs")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help=cmd_demo.__doc__, description=cmd_demo.__doc__)
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--max-samples", type=positive_int, default=10240, help="training sequences per model (default 10240)")
    p.add_argument("--size", default="small-cpu", help="decoder size (default small-cpu)")
    p.add_argument("--encoder", default="simp", help="vision encoder (default simp)")
    p.add_argument("--res", type=int, default=8, help="vision resolution (default 8)")
    p.add_argument("--eval-sequences", type=positive_int, default=512, help="validation sequences per evaluation (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fresh", action="store_true", help="retrain runs that already finished in --out")
    p.add_argument("--family", action="store_true", help="instead: a tiny pixel MAE and its character BERT, pretrained "
                                                         "alike and fine-tuned on iNews sentiment (OUT/family)")
    p.set_defaults(func=cmd_demo)

    for action in sub.choices.values():
        action.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for a user error, 130 if interrupted)."""
    try:
        args = build_parser().parse_args(argv)
        check_text_arguments(args)
        args.func(args)
    except HotStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
