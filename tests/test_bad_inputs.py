"""Every row of docs/bad-inputs.md is a case here: the command fails with exit status 2 and one
`error:` line, no traceback, and the message in the doc is exactly what the user sees. Words of a
message that come from elsewhere (Python's and the libraries' own error texts, argparse's phrasing,
the installed font) are shown in the doc as they were, and compared only where they stand.

Regenerate the doc after changing a message: `python tests/test_bad_inputs.py` (it runs every
case in a temporary folder and rewrites docs/bad-inputs.md).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotstart.cli import main
from hotstart.render.fonts import default_font

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad-inputs.md"


@dataclass
class Case:
    id: str
    what: str  # the bad input, as a person would describe it
    argv: str  # command line; {tmp}, {data}, {run} and files made by `setup` are filled in
    fragment: str  # the message must name this (words of ours)
    setup: Callable[[Path], None] | None = None
    theirs: str | None = None
    """A regular expression for the parts of the message that are not ours: the doc shows them as
    they were when it was written, the test checks they are there and compares everything else."""


def _write(name: str, data: str | bytes) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return make


def _copy_run(then: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(tmp: Path) -> None:
        shutil.copytree(tmp / "run", tmp / "run2")
        then(tmp / "run2")
    return make


def _truncate(relative: str, keep: int | None = None) -> Callable[[Path], None]:
    def cut(run: Path) -> None:
        path = run / relative
        data = path.read_bytes()
        path.write_bytes(data[: keep if keep is not None else len(data) // 2])
    return cut


def _unfinish_and_truncate_state(run: Path) -> None:
    (run / "summary.json").unlink()
    _truncate("checkpoints/state.safetensors")(run)


def _point_at_other_corpus(run: Path) -> None:
    config = (run / "config.yaml").read_text(encoding="utf-8")
    data_line = next(line for line in config.splitlines() if line.startswith("data:"))
    (run / "config.yaml").write_text(config.replace(data_line, f"data: {run.parent / 'other_data'}"), encoding="utf-8")


def _pixel_run(tmp: Path) -> None:
    """A finished tiny next-patch run in tmp/np, on the cases' corpus."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["train", "--objective", "next-patch", "--data", str(tmp.parent / "data"), "--size", "tiny",
                     "--max-patches", "40", "--batch-size", "8", "--max-samples", "8", "--eval-sequences", "8",
                     "--precision", "fp32", "--out", str(tmp / "np"), "--quiet"])
    assert code == 0


SAFETENSORS_SAYS = r"(?<= is corrupt or truncated )\(.+\)(?=; )"  # safetensors' own description of the damage
MANY_LINES = "".join(f"这是第{i}条新闻，内容很长很长很长很长很长。\n" for i in range(300))
TRAIN = "train --data {data} --size tiny --batch-size 16 --max-samples 32 --eval-every 16 --out {tmp}/r"
CASES = [
    Case("corpus-missing", "corpus path that does not exist", "prepare --corpus {tmp}/nope --out {tmp}/p", "does not exist"),
    Case("corpus-empty", "corpus with only whitespace and control characters", "prepare --corpus {tmp}/empty.txt --out {tmp}/p",
         "no characters after cleaning", _write("empty.txt", " \n\t\x07\n")),
    Case("corpus-undecodable", "GBK file read as UTF-8", "prepare --corpus {tmp}/gbk.txt --out {tmp}/p", "--encoding",
         _write("gbk.txt", "中文新闻".encode("gbk") * 20), theirs=r"(?<= text at byte 0 )\([^)]+\)(?=; )"),
    Case("encoding-unknown", "unknown --encoding", "prepare --corpus {tmp}/many.txt --encoding klingon --out {tmp}/p",
         "klingon", _write("many.txt", MANY_LINES)),
    Case("format-unknown", "unknown --format", "prepare --corpus {tmp}/many.txt --format csv --out {tmp}/p", "csv",
         _write("many.txt", MANY_LINES)),
    Case("jsonl-bad-line", "JSONL line that is not JSON", "prepare --corpus {tmp}/wiki.jsonl --out {tmp}/p", "line 2",
         _write("wiki.jsonl", '{"text": "中文"}\n{"text": 中文}\n'), theirs=r"(?<= is not JSON )\([^)]+\)(?=; )"),
    Case("jsonl-no-text", "JSONL object without a text field", "prepare --corpus {tmp}/wiki.jsonl --out {tmp}/p", "text",
         _write("wiki.jsonl", '{"title": "中文"}\n')),
    Case("corpus-too-short", "corpus shorter than two sequences", "prepare --corpus {tmp}/short.txt --min-freq 1 --out {tmp}/p",
         "--seq-len", _write("short.txt", "中文新闻很好看。\n")),
    Case("corpus-all-unknown", "corpus whose every character is rarer than --min-freq",
         "prepare --corpus {tmp}/many.txt --min-freq 100000 --seq-len 16 --out {tmp}/p", "--min-freq",
         _write("many.txt", MANY_LINES)),
    Case("seq-len-1", "--seq-len 1", "prepare --corpus {tmp}/many.txt --seq-len 1 --out {tmp}/p", "--seq-len",
         _write("many.txt", MANY_LINES)),
    Case("min-freq-0", "--min-freq 0", "prepare --corpus {tmp}/many.txt --min-freq 0 --out {tmp}/p", "--min-freq",
         _write("many.txt", MANY_LINES)),
    Case("corpus-version-of-a-file", "`prepare --corpus-version` for a text file (it versions built-in corpora)",
         "prepare --corpus {tmp}/many.txt --corpus-version 1 --out {tmp}/p", "chooses the text of a built-in corpus",
         _write("many.txt", MANY_LINES)),
    Case("corpus-version-unknown", "a --corpus-version the built-in corpus does not have",
         "prepare --corpus inews --corpus-version 3 --out {tmp}/p", "has versions 1 to 2, not 3"),
    Case("prepared-exists", "prepare into a folder that already holds a corpus", "prepare --corpus {tmp}/many.txt --seq-len 16 --out {data}",
         "--overwrite", _write("many.txt", MANY_LINES)),
    Case("res-0", "resolution 0", "render --chars 山 --res 0 --out {tmp}/g.png", "res"),
    Case("res-1000", "resolution 1000", "render --chars 山 --res 1000 --out {tmp}/g.png", "res"),
    Case("crop-0", "crop 0", "render --chars 山 --crop 0 --out {tmp}/g.png", "crop"),
    Case("crop-1.5", "crop 1.5", "render --chars 山 --crop 1.5 --out {tmp}/g.png", "crop"),
    Case("margin-0.5", "margin 0.5 (no ink area left)", "render --chars 山 --margin 0.5 --out {tmp}/g.png", "margin"),
    Case("font-missing", "font path that does not exist", "render --chars 山 --font {tmp}/nope.ttf --out {tmp}/g.png", "does not exist"),
    Case("font-not-a-font", "a text file passed as the font", "render --chars 山 --font {tmp}/font.ttf --out {tmp}/g.png",
         "not a TrueType", _write("font.ttf", "not a font")),
    Case("face-out-of-range", "face index past the end of the collection", "render --chars 山 --face 99 --out {tmp}/g.png",
         "face 99 does not exist", theirs=r"(?<= has )\d+(?= face\(s\))|(?<= from 0 to )\d+$"),  # the font's count
    Case("glyph-missing-error", "character the font lacks, with --missing error",
         "render --chars 山\ue000 --missing error --out {tmp}/g.png", "U+E000", theirs=r"(?<= not in font ).+(?=: U\+E000;)"),
    Case("missing-policy-unknown", "unknown --missing policy", "render --chars 山 --missing shrug --out {tmp}/g.png", "missing"),
    Case("fallback-without-policy", "--fallback-font without --missing fallback",
         "render --chars 山 --fallback-font {tmp}/nope.ttf --out {tmp}/g.png", "--missing fallback"),
    Case("line-empty", "render-text with a line of only a zero-width space (U+200B), nothing to draw",
         "render-text --text \u200b --out {tmp}/l.png", "nothing to draw"),
    Case("line-missing-error", "character in no font of the chain, with --missing error",
         "render-text --text 山\U00013000 --missing error --out {tmp}/l.png", "U+13000",
         theirs=r"(?<=of the chain \().+(?=\): U\+13000)"),  # the installed font chain
    Case("line-mode-unknown", "unknown --mode", "render-text --text 山 --mode colour --out {tmp}/l.png", "mode"),
    Case("line-cell-unknown", "unknown --cell", "render-text --text 山 --cell word --out {tmp}/l.png", "cell"),
    Case("line-max-patches-1", "--max-patches 1 (no room for text and the end patch)",
         "render-text --text 山 --max-patches 1 --out {tmp}/l.png", "--max-patches: must be an integer from 2"),
    Case("line-patch-3", "--patch 3", "render-text --text 山 --patch 3 --out {tmp}/l.png", "patch"),
    Case("encoder-unknown", "unknown encoder name", TRAIN + " --input vision --encoder resnet", "unknown encoder"),
    Case("objective-unknown", "unknown --objective", TRAIN + " --objective diffusion", "unknown objective"),
    Case("decoder-unknown", "unknown --decoder", TRAIN + " --decoder mamba", "unknown decoder 'mamba'"),
    Case("mae-next-char-option", "a next-char option (--encoder) with --objective mae",
         TRAIN + " --objective mae --encoder orig", "--encoder is not an option"),
    Case("next-char-mae-option", "an MAE option (--mask-ratio) on a next-char run", TRAIN + " --mask-ratio 0.5",
         "--mask-ratio is not an option"),
    Case("mae-size-unknown", "unknown MAE size", TRAIN.replace("--size tiny", "--size huge") + " --objective mae",
         "unknown MAE size"),
    Case("mae-grid-not-square", "--max-patches that is not a square number, for the MAE's grid",
         TRAIN + " --objective mae --max-patches 500", "square number"),
    Case("mae-run-evaluated", "`hotstart eval` of an MAE run (it reads next-char runs)", "eval {tmp}/mae",
         "is a run of --objective mae", _write("mae/config.yaml", "data: x\nobjective: mae\n")),
    Case("mlm-mae-option", "an MAE option (--max-span) with --objective mlm", TRAIN + " --objective mlm --max-span 3",
         "--max-span is not an option"),
    Case("next-patch-mae-option", "an MAE option (--mask-ratio) with --objective next-patch",
         TRAIN + " --objective next-patch --mask-ratio 0.5", "--mask-ratio is not an option"),
    Case("next-patch-head-unknown", "unknown --head of a pixel LM", TRAIN + " --objective next-patch --head softmax",
         "unknown pixel head"),
    Case("next-patch-norm-target-bernoulli", "--norm-target with the bernoulli head (it predicts raw ink)",
         TRAIN + " --objective next-patch --head bernoulli --norm-target", "--norm-target standardises"),
    Case("next-patch-run-finetuned", "fine-tuning a next-patch run (fine-tuning reads next-char, mae and mlm runs)",
         "finetune {tmp}/np --out {tmp}/ft", "is a run of --objective next-patch",
         _write("np/config.yaml", "data: x\nobjective: next-patch\n")),
    Case("pixel-patch-len-not-dividing", "a --patch-len that does not divide the line's patches",
         TRAIN + " --objective pixar --max-patches 41", "does not divide the line's 41 patches"),
    Case("pixar-stage2-without-stage1", "PIXAR's stage 2 without a stage-1 run to start from",
         TRAIN + " --objective pixar --stage 2", "pass --stage1-run"),
    Case("pixar-stage2-from-next-char", "PIXAR's stage 2 from a run that is not a pixel LM (a next-char run)",
         TRAIN + " --objective pixar --stage 2 --stage1-run {run}", "is a run of --objective next-char"),
    Case("generate-pixels-from-mae", "`hotstart generate --out` from an MAE run (it writes no next patch)",
         "generate {tmp}/mae --out {tmp}/g.png", "is a run of --objective mae",
         _write("mae/config.yaml", "data: x\nobjective: mae\n")),
    Case("generate-prompt-not-drawable", "a prompt with a character no font of a pixel LM's chain draws",
         "generate {tmp}/np --prompt 山\U00013000 --out {tmp}/g.png", "no font of the run's chain draws", _pixel_run),
    Case("head-glyph-index", "the glyph-tied head on an index run (it scores characters by their glyphs)",
         TRAIN + " --head glyph", "it needs --input vision"),
    Case("holdout-share-1", "--holdout-share 1 (nothing left to train on)", TRAIN + " --holdout-share 1",
         "--holdout-share must be at least 0 and below 1"),
    Case("mix-font-index", "--mix-font on an index run (it reads no glyphs)", TRAIN + " --mix-font {tmp}/f.ttf",
         "it needs --input vision"),
    Case("glyph-permute-index", "--glyph-permute on an index run (it reads no glyphs)", TRAIN + " --glyph-permute 1",
         "they need --input vision"),
    Case("glyph-permute-negative", "a negative --glyph-permute seed", TRAIN + " --input vision --glyph-permute -1",
         "--glyph-permute takes a seed >= 0"),
    Case("glyph-source-unknown", "a --glyph-source that is neither font nor noise", TRAIN + " --input vision --glyph-source random",
         "unknown glyph_source 'random'"),
    Case("adapter-init-std-negative", "a negative --adapter-init-std", TRAIN + " --input vision --adapter-init-std -0.02",
         "--adapter-init-std must be a number >= 0"),
    Case("adapter-init-std-nan", "--adapter-init-std nan", TRAIN + " --input vision --adapter-init-std nan",
         "--adapter-init-std must be a number >= 0"),
    Case("finetune-recipe-unknown", "`finetune --recipe fast` (no such recipe)", "finetune {run} --recipe fast --out {tmp}/ft",
         "unknown fine-tuning recipe 'fast'; choose ours or pixel-m4"),
    Case("finetune-patience-0", "`finetune --patience 0` (no epoch to wait)", "finetune {run} --patience 0 --out {tmp}/ft",
         "--patience: must be an integer >= 1, got 0"),
    Case("train-disc-sees-unknown", "`train --objective pixar --disc-sees grey` (no such input)",
         "train --objective pixar --data {data} --out {tmp}/r --disc-sees grey", "--disc-sees must be emitted or soft, got 'grey'"),
    Case("finetune-epochs-0", "`finetune --epochs 0` (it trained the default 4 epochs)", "finetune {run} --epochs 0 --out {tmp}/ft",
         "--epochs: must be an integer >= 1, got 0"),
    Case("finetune-epochs-negative", "`finetune --epochs -1`", "finetune {run} --epochs -1 --out {tmp}/ft",
         "--epochs: must be an integer >= 1, got -1"),
    Case("finetune-max-chars-0", "`finetune --max-chars 0` (it meant the default)", "finetune {run} --max-chars 0 --out {tmp}/ft",
         "--max-chars: must be an integer >= 1, got 0"),
    Case("finetune-max-chars-negative", "`finetune --max-chars -5` (it dropped 5 characters of every document)",
         "finetune {run} --max-chars -5 --out {tmp}/ft", "--max-chars: must be an integer >= 1, got -5"),
    Case("finetune-lr-0", "`finetune --lr 0` (it meant the default)", "finetune {run} --lr 0 --out {tmp}/ft",
         "--lr: must be a number > 0, got 0"),
    Case("finetune-lr-negative", "`finetune --lr -1`", "finetune {run} --lr -1 --out {tmp}/ft", "--lr: must be a number > 0, got -1"),
    Case("finetune-batch-size-0", "`finetune --batch-size 0`", "finetune {run} --batch-size 0 --out {tmp}/ft",
         "--batch-size: must be an integer >= 1, got 0"),
    Case("finetune-out-is-a-file", "`finetune --out` at an existing file", "finetune {run} --out {tmp}/many.txt",
         "cannot create fine-tuning folder", _write("many.txt", MANY_LINES)),
    Case("eval-sequences-0", "`eval --sequences 0` (it reported accuracy 0.0 on 0 tokens)", "eval {run} --sequences 0",
         "--sequences: must be an integer >= 1, got 0"),
    Case("eval-sequences-negative", "`eval --sequences -5` (it evaluated all but 5)", "eval {run} --sequences -5",
         "--sequences: must be an integer >= 1, got -5"),
    Case("generate-max-new-0", "`generate --max-new 0` of a next-char run (a pixel run refused it)",
         "generate {run} --max-new 0", "--max-new: must be an integer >= 1, got 0"),
    Case("generate-top-k-0", "`generate --top-k 0`", "generate {run} --top-k 0", "--top-k: must be an integer >= 1, got 0"),
    Case("generate-temperature-negative", "`generate --temperature -1`", "generate {run} --temperature -1",
         "--temperature: must be a number >= 0, got -1"),
    Case("render-text-zoom-0", "`render-text --zoom 0` (it meant 1)", "render-text --text 山 --zoom 0 --out {tmp}/l.png",
         "--zoom: must be an integer from 1 to 64, got 0"),
    Case("render-text-zoom-huge", "`render-text --zoom 100000` (it grew to 20 GB and was killed)",
         "render-text --text 山 --zoom 100000 --out {tmp}/l.png", "--zoom: must be an integer from 1 to 64, got 100000"),
    Case("render-text-max-patches-huge", "`render-text --max-patches 100000000` (a MemoryError traceback)",
         "render-text --text 山 --max-patches 100000000 --out {tmp}/l.png",
         "--max-patches: must be an integer from 2 to 16384, got 100000000"),
    Case("render-text-out-folder", "`render-text --out` at a folder", "render-text --text 山 --out {tmp}",
         "is a folder; pass a file name ending in .png"),
    Case("render-text-out-no-extension", "`render-text --out` with no extension", "render-text --text 山 --out {tmp}/line",
         "must end in .png, the format written"),
    Case("render-text-out-txt", "`render-text --out` ending in .txt", "render-text --text 山 --out {tmp}/line.txt",
         "must end in .png, the format written"),
    Case("render-text-binary-draw-unknown", "`render-text --binary-draw smooth` (no such drawing)",
         "render-text --text 山 --mode binary --binary-draw smooth --out {tmp}/l.png",
         "line render option binary_draw='smooth' is not allowed; use aliased | threshold"),
    Case("render-text-edge-unknown", "`render-text --edge cut` (no such edge policy)",
         "render-text --text 山 --edge cut --out {tmp}/l.png", "line render option edge='cut' is not allowed; use clip | fit"),
    Case("train-eval-at-0", "`train --eval-at 0` (no step comes before the first sample)",
         "train --data {data} --out {tmp}/r --eval-at 0", "--eval-at: must be an integer >= 1, got 0"),
    Case("prepare-out-is-a-file", "`prepare --out` at an existing file", "prepare --corpus {tmp}/many.txt --out {tmp}/many.txt",
         "cannot create prepared corpus folder", _write("many.txt", MANY_LINES)),
    Case("export-out-is-a-file", "`export --out` at an existing file", "export {run} --out {tmp}/many.txt",
         "cannot create export folder", _write("many.txt", MANY_LINES)),
    Case("corpus-not-a-file", "`prepare --corpus /dev/null` (a device, not a file)", "prepare --corpus /dev/null --out {tmp}/p",
         "is neither a file nor a folder"),
    Case("font-is-a-folder", "`--font` naming a folder", "render --chars 山 --font {tmp} --out {tmp}/g.png",
         "is a folder, not a font file"),
    Case("n-layer-0", "`train --n-layer 0` (it trained a decoder with no layers)", TRAIN + " --n-layer 0",
         "--n-layer: must be an integer >= 1, got 0"),
    Case("resume-nothing", "`train --resume` into a folder that holds no run (it started from scratch)",
         TRAIN + " --resume", "nothing to resume"),
    Case("mix-font-missing", "a --mix-font file that does not exist", TRAIN + " --input vision --mix-font {tmp}/none.ttf",
         "does not exist"),
    Case("fonts-grid-bad-scale", "a scale the fonts grid does not have", "sweep fonts --scale paper --out {tmp}/g",
         "the fonts grid has no scale 'paper'"),
    Case("eval-stroke-dropout-above-1", "--stroke-dropout above 1 in `hotstart eval`", "eval {run} --stroke-dropout 1.5",
         "--stroke-dropout must be a number from 0 to 1"),
    Case("eval-keep-unknown", "a --keep region the renderer does not have", "eval {run} --keep middle",
         "render option keep='middle' is not allowed; use all, centre or border"),
    Case("eval-centre-share-1", "--centre-share 1 (no border left)", "eval {run} --keep border --centre-share 1",
         "render option centre_share=1.0 is not allowed; use 0 < centre_share < 1"),
    Case("eval-centre-share-without-keep", "--centre-share without a --keep region to apply it to",
         "eval {run} --centre-share 0.5", "only read with keep centre or border; add --keep centre or --keep border"),
    Case("attribution-grid-bad-scale", "a scale the attribution grid does not have",
         "sweep attribution --scale paper --out {tmp}/g", "the attribution grid has no scale 'paper'"),
    Case("compression-grid-bad-scale", "a scale the compression grid does not have",
         "sweep compression --scale paper --out {tmp}/g", "the compression grid has no scale 'paper'"),
    Case("compression-only-unknown", "--only naming no rendering strategy of the compression grid",
         "sweep compression --scale smoke --only mono --out {tmp}/g", "not a strategy of the compression grid"),
    Case("compression-seeds", "--seeds for the compression grid, which trains nothing",
         "sweep compression --scale smoke --seeds 0,1 --out {tmp}/g", "--seeds is not an option of the compression grid"),
    Case("mlm-mask-prob", "--mask-prob outside (0, 1)", TRAIN + " --objective mlm --mask-prob 0", "mask_prob"),
    Case("finetune-not-a-run", "fine-tuning a folder that is not a pretraining run (a prepared corpus)",
         "finetune {data} --out {tmp}/ft", "not a run folder"),
    Case("finetune-of-finetune", "fine-tuning a fine-tuning folder", "finetune {tmp}/ft --out {tmp}/ft2",
         "is a fine-tuning folder", _write("ft/finetune.json", "{}")),
    Case("finetune-task-unknown", "--task that is neither built in nor a folder", "finetune {run} --task weibo --out {tmp}/ft",
         "unknown task"),
    Case("finetune-task-no-text", "a task file with a line that has no text field",
         "finetune {run} --task {tmp}/task --out {tmp}/ft", 'has no string "text" field',
         _write("task/train.jsonl", '{"text": "好", "label": 1}\n{"label": 0}\n')),
    Case("finetune-task-no-label", "a task file with a line that has no label",
         "finetune {run} --task {tmp}/task --out {tmp}/ft", 'has no "label" field',
         _write("task/train.jsonl", '{"text": "好", "label": 1}\n{"text": "坏"}\n')),
    Case("finetune-task-unknown-label", "a task whose test split has a label its training split has not",
         "finetune {run} --task {tmp}/task --out {tmp}/ft", "that train has not",
         lambda tmp: [_write(f"task/{split}.jsonl", text)(tmp) for split, text in (
             ("train", '{"text": "好", "label": "pos"}\n{"text": "坏", "label": "neg"}\n'),
             ("dev", '{"text": "好", "label": "pos"}\n'), ("test", '{"text": "还行", "label": "neutral"}\n'))]),
    Case("finetune-task-missing-split", "a task folder without dev.jsonl", "finetune {run} --task {tmp}/task --out {tmp}/ft",
         "has no dev.jsonl", _write("task/train.jsonl", '{"text": "好", "label": 1}\n')),
    Case("finetune-mode-unknown", "unknown --mode", "finetune {run} --mode lora --out {tmp}/ft", "unknown fine-tuning mode"),
    Case("finetune-seeds-bad", "--seeds that are not integers", "finetune {run} --seeds a,b --out {tmp}/ft", "--seeds"),
    Case("input-unknown", "unknown input path", TRAIN + " --input pixels", "unknown input"),
    Case("size-unknown", "unknown decoder size", "train --data {data} --input index --size huge --out {tmp}/r", "huge"),
    Case("data-not-prepared", "--data folder that was never prepared", "train --data {tmp} --input index --out {tmp}/r", "prepare"),
    Case("max-samples-0", "--max-samples 0", TRAIN.replace("--max-samples 32", "--max-samples 0") + " --input index", "max-samples"),
    Case("schedule-unknown", "unknown --schedule", TRAIN + " --input index --schedule step", "schedule"),
    Case("precision-fp16-cpu", "--precision fp16 on a CPU", TRAIN + " --input index --precision fp16 --device cpu", "fp16"),
    Case("embed-init-nan", "--embed-init-std nan", TRAIN + " --input index --embed-init-std nan", "embed-init-std"),
    Case("out-not-writable", "--out inside a file, so no folder can be made there",
         TRAIN.replace("{tmp}/r", "{tmp}/file.txt/run") + " --input index", "cannot create", _write("file.txt", "x"),
         theirs=r"(?<=/file\.txt/run: )[^;]+(?=; )"),  # the system's words for the failure
    Case("run-exists", "train into an existing run folder", TRAIN.replace("{tmp}/r", "{run}") + " --input vision", "--overwrite"),
    Case("resume-other-settings", "--resume with other settings than the run was started with",
         TRAIN.replace("{tmp}/r", "{tmp}/run2") + " --input index --resume", "cannot resume",
         _copy_run(lambda run: (run / "summary.json").unlink())),
    Case("resume-truncated-state", "--resume with a truncated training state",
         "train --data {data} --input vision --encoder opt --size tiny --batch-size 16 --max-samples 64 --eval-every 16 "
         "--precision fp32 --out {tmp}/run2 --resume", "corrupt or truncated", _copy_run(_unfinish_and_truncate_state),
         theirs=SAFETENSORS_SAYS),
    Case("eval-run-missing", "eval of a run folder that does not exist", "eval {tmp}/nope", "does not exist"),
    Case("eval-not-a-run", "eval of a folder that is not a run", "eval {tmp}", "not a run folder"),
    Case("eval-checkpoint-truncated", "eval of a run whose checkpoint is truncated", "eval {tmp}/run2",
         "corrupt or truncated", _copy_run(_truncate("checkpoints/best.safetensors", keep=100)), theirs=SAFETENSORS_SAYS),
    Case("eval-checkpoint-unknown", "eval --checkpoint that does not exist", "eval {run} --checkpoint final", "checkpoint"),
    Case("eval-other-vocabulary", "eval of a run whose corpus folder now holds another vocabulary", "eval {tmp}/run2",
         "another vocabulary", _copy_run(_point_at_other_corpus)),
    Case("embeddings-no-checkpoint", "embeddings of a run whose checkpoints were not kept (a committed result folder)",
         "embeddings {tmp}/run2 --checkpoint best", "no checkpoints folder",
         _copy_run(lambda run: shutil.rmtree(run / "checkpoints"))),
    Case("embeddings-run-missing", "embeddings of a run folder that does not exist", "embeddings {tmp}/nope", "does not exist"),
    Case("sweep-grid-unknown", "unknown sweep grid", "sweep rq9 --scale smoke --out {tmp}/s", "unknown grid"),
    Case("sweep-scale-unknown", "unknown sweep scale", "sweep rq1 --scale huge --out {tmp}/s", "unknown scale"),
    Case("sweep-seeds-bad", "--seeds that are not integers", "sweep rq2 --seeds 0,one --out {tmp}/s", "--seeds"),
    Case("sweep-no-out", "sweep without --out", "sweep rq1 --scale smoke", "--out"),
    Case("sweep-data-not-prepared", "sweep --data folder that was never prepared", "sweep rq1 --scale smoke --data {tmp} --out {tmp}/s",
         "prepare"),
    Case("sweep-precision-mismatch", "resuming a sweep in another precision than its runs trained in",
         "sweep rq1 --scale smoke --precision bf16 --out {tmp}/s", "pass --precision fp32",
         _write("s/sweep.json", '{"scale": "smoke", "commands": [], "grids": [], "precision": "fp32"}')),
    Case("report-no-runs", "report of a folder with no runs", "report {tmp} --out {tmp}/rep", "neither a run folder"),
    Case("command-unknown", "unknown subcommand", "frobnicate", "(see hotstart --help)",
         theirs=r"(?<=^error: hotstart: ).+(?= \(see hotstart --help\)$)"),  # argparse's phrasing
]


def build_world(tmp: Path) -> dict[str, Path]:
    """What the cases refer to: {data} a prepared corpus, {run} a finished tiny vision run."""
    from hotstart.data.prepared import PrepareConfig, prepare

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import inews_sample

    (tmp / "news.txt").write_text(inews_sample(40), encoding="utf-8")
    (tmp / "other.txt").write_text(MANY_LINES, encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        prepare(PrepareConfig(corpus=str(tmp / "news.txt"), seq_len=32, val_sequences=16, min_freq=2, split_lines=True),
                tmp / "data", progress=False)
        prepare(PrepareConfig(corpus=str(tmp / "other.txt"), seq_len=16, val_sequences=8), tmp / "other_data", progress=False)
        code = main(["train", "--data", str(tmp / "data"), "--input", "vision", "--encoder", "opt", "--size", "tiny",
                     "--batch-size", "16", "--max-samples", "64", "--eval-every", "16", "--precision", "fp32",
                     "--out", str(tmp / "run"), "--quiet"])
    assert code == 0
    return {"tmp": tmp, "data": tmp / "data", "run": tmp / "run"}


def run_case(case: Case, world: dict[str, Path]) -> tuple[int, str]:
    """Run one case in its own subfolder; returns (exit status, stderr with paths made generic)."""
    tmp = Path(tempfile.mkdtemp(dir=world["tmp"], prefix=f"{case.id}-"))
    shutil.copytree(world["run"], tmp / "run")  # cases that damage a run copy this one, never the shared run
    (tmp / "other_data").symlink_to(world["tmp"] / "other_data")
    if case.setup:
        case.setup(tmp)
    argv = case.argv.format(tmp=tmp, data=world["data"], run=world["run"]).split()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    text = err.getvalue()
    generic = ((tmp, "<tmp>"), (world["data"], "<data>"), (world["run"], "<run>"), (world["tmp"], "<tmp>"),
               (Path(default_font()[0]), "<default font>"))
    for path, name in generic:
        text = text.replace(str(path.resolve()), name).replace(str(path), name)
    return code, text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_world(tmp_path_factory.mktemp("bad_inputs"))


DOC_ROW = re.compile(r"^\| `(?P<id>[^`]+)` \| (?P<what>.+?) \| `` (?P<command>.+?) `` \| `` (?P<message>.*) `` \|$")


def doc_rows() -> list[dict[str, str]]:
    """The rows of docs/bad-inputs.md's table, in order: id, what, command and message columns."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    table = [line for line in lines if line.startswith("| `")]
    rows = [DOC_ROW.match(line) for line in table]
    assert all(rows), [line for line, row in zip(table, rows) if not row]  # every table row parses
    return [{**row.groupdict(), "message": row["message"].replace("\\|", "|")} for row in rows]


def doc_command(case: Case) -> str:
    """The command column of a case's row: its command line with the generic names of the paths."""
    return "hotstart " + case.argv.replace("{tmp}", "<tmp>").replace("{data}", "<data>").replace("{run}", "<run>")


def ours(case: Case, message: str) -> str:
    """`message` with the parts that are not ours (`case.theirs`) replaced by "…", which must be there."""
    if case.theirs is None:
        return message
    masked, found = re.subn(case.theirs, "…", message)
    assert found, f"{case.id}: no part of {message!r} matches {case.theirs!r}"
    return masked


def test_the_doc_has_one_row_per_case_in_order_with_its_command() -> None:
    rows = doc_rows()
    assert len(rows) == len(CASES), "docs/bad-inputs.md is out of date: run python tests/test_bad_inputs.py"
    assert [row["id"] for row in rows] == [case.id for case in CASES]
    for row, case in zip(rows, CASES):
        assert row["command"] == doc_command(case), case.id
        assert row["what"] == case.what, case.id
        assert case.fragment in ours(case, row["message"]), case.id  # the fragment is among our own words


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_the_documented_one_line_error(case: Case, world: dict[str, Path]) -> None:
    code, text = run_case(case, world)
    assert code == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and text.strip().splitlines()[-1] == errors[0], text
    assert case.fragment in ours(case, errors[0]), errors[0]
    documented = {row["id"]: row["message"] for row in doc_rows()}[case.id]
    assert ours(case, documented) == ours(case, errors[0]), \
        "docs/bad-inputs.md is out of date: run python tests/test_bad_inputs.py"


def test_the_readme_states_the_number_of_documented_cases() -> None:
    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"(docs/bad-inputs.md) lists {len(CASES)} of them" in readme


def write_doc() -> None:
    """Run every case and rewrite docs/bad-inputs.md from what the user actually sees."""
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(Path(tmp))
        lines = ["# Bad inputs and what you see", "",
                 "Each row is a case in `tests/test_bad_inputs.py`, which checks that the command exits with status 2,",
                 "prints exactly this one `error:` line (paths shown as `<tmp>`, `<data>`, `<run>`, `<default font>`) and no",
                 "traceback. Words that come from elsewhere (Python's or a library's description of a bad file, argparse's",
                 "phrasing, the installed font's name and face count) are shown as they were here and may read differently",
                 "with other versions; the test compares the rest.",
                 "Regenerate with `python tests/test_bad_inputs.py`.", "",
                 "| case | bad input | command | what you see |", "|---|---|---|---|"]
        for case in CASES:
            code, text = run_case(case, world)
            error = next((line for line in text.splitlines() if line.startswith("error: ")), f"(exit {code}, no error)")
            escaped = error.replace("|", "\\|")
            lines.append(f"| `{case.id}` | {case.what} | `` {doc_command(case)} `` | `` {escaped} `` |")
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)")


if __name__ == "__main__":
    write_doc()
