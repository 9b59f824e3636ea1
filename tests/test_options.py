"""The option checks every command shares (hotstart/options.py): one line for a bad value, before any work."""

from __future__ import annotations

import json
import math

import pytest

from hotstart.cli import json_line, main
from hotstart.errors import HotStartError
from hotstart.options import folder_lock, int_range, valid_text
from hotstart.render.line import MAX_LINE_PATCHES, LineRenderConfig


def test_a_second_command_on_a_folder_being_written_is_refused_and_the_first_keeps_its_work(news_text_file, tmp_path,
                                                                                           capsys) -> None:
    out = tmp_path / "p"
    with folder_lock(out, "prepared corpus folder"):  # a first `prepare` still at work on this folder
        code = main(["prepare", "--corpus", str(news_text_file), "--out", str(out)])
        assert code == 2
        assert "another command is writing prepared corpus folder" in capsys.readouterr().err
        assert not (out / "meta.json").exists() and out.is_dir()  # the refused command left the holder's folder
        with pytest.raises(HotStartError, match="another command is writing"), folder_lock(out, "prepared corpus folder"):
            pass
    assert not out.exists()  # the folder the lock made, left empty, is gone: no lock file or folder behind
    out.mkdir()
    with folder_lock(out, "prepared corpus folder"):  # released when the first ends
        pass
    assert out.is_dir() and list(out.iterdir()) == []  # a folder that was there stays


def test_text_that_is_not_utf8_is_refused_with_one_line(tmp_path, capsys) -> None:
    undecodable = b"\xff\xfeab".decode("utf-8", "surrogateescape")  # what Python makes of such bytes in argv
    assert main(["render-text", "--text", undecodable, "--out", str(tmp_path / "l.png")]) == 2
    assert capsys.readouterr().err.strip() == "error: --text is not valid UTF-8 text (byte 0); pass it in UTF-8"
    assert valid_text("山水", "--text") == "山水"
    import argparse

    from hotstart.options import check_text_arguments

    check_text_arguments(argparse.Namespace(text="山", out="caf\udce9"))  # a path may be any bytes: not checked


def test_json_output_has_no_nan_and_parses_strictly() -> None:
    line = json_line({"readability": math.nan, "rows": [1.0, math.inf, {"x": -math.inf}], "read": "山"})
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) == \
        {"readability": None, "rows": [1.0, None, {"x": None}], "read": "山"}


def test_a_line_longer_than_the_renderer_draws_is_refused_in_a_config_too() -> None:
    LineRenderConfig(max_patches=MAX_LINE_PATCHES).validate()
    with pytest.raises(HotStartError, match="max_patches=16385 is not allowed"):
        LineRenderConfig(max_patches=MAX_LINE_PATCHES + 1).validate()


def test_an_integer_range_names_what_it_allows() -> None:
    import argparse

    check = int_range(1, 64)
    assert check("64") == 64
    for bad, said in (("0", "got 0"), ("65", "got 65"), ("2.5", "got '2.5'"), ("x", "got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be an integer from 1 to 64, {said}"):
            check(bad)


def test_generate_names_the_prompt_characters_the_run_does_not_know(tiny_corpus, tmp_path, capsys) -> None:
    from conftest import train_tiny_vision_run

    run = train_tiny_vision_run(tiny_corpus, tmp_path / "run")
    capsys.readouterr()
    known = tiny_corpus.vocab.chars[0]
    assert main(["generate", str(run), "--prompt", f"{known}\u0fff{known}\u0fff", "--max-new", "2", "--seed", "0"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 character(s) of --prompt are not in the run's vocabulary and are read as <unk>: \u0fff" in err


@pytest.mark.subprocess
def test_help_and_version_load_neither_torch_nor_transformers() -> None:
    import subprocess
    import sys

    code = ("import sys, contextlib, io\nfrom hotstart.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for argv in (['--version'], ['--help'], ['train', '--help'], ['sweep', '--help']):\n"
            "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_the_public_api_is_every_name_it_lists() -> None:
    import hotstart

    assert sorted(hotstart.__all__) == sorted(hotstart._HOME)
    assert hotstart.train.__module__ == "hotstart.training.loop" and hotstart.HotStartError.__name__ == "HotStartError"
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        hotstart.trian  # noqa: B018


# ----------------------------------------------------------------------------- docs/testing.md's table

TABLE_START, TABLE_END = "<!-- option-checks:start -->", "<!-- option-checks:end -->"


def option_check_table() -> str:
    """A markdown table, read from the parser: each command's options whose values are checked by a shared
    check (hotstart/options.py) when the command line is parsed, before any work."""
    from hotstart.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    lines = ["| command | options checked before any work (what they take) |", "|---|---|"]
    for name, sub in commands.items():
        checked = []
        for action in sub._actions:
            if hasattr(action.type, "allowed") and action.option_strings:
                checked.append(f"`{action.option_strings[-1]}` ({action.type.allowed})")
        lines.append(f"| `{name}` | {', '.join(checked) or '(its checks run in the command: see docs/bad-inputs.md)'} |")
    return "\n".join(lines)


def test_the_option_table_in_docs_testing_is_the_parsers() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    table = doc.split(TABLE_START)[1].split(TABLE_END)[0].strip()
    assert table == option_check_table(), "docs/testing.md is out of date: run python tests/test_options.py"


if __name__ == "__main__":  # rewrite the table in docs/testing.md
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
    doc = path.read_text(encoding="utf-8")
    head, rest = doc.split(TABLE_START)
    path.write_text(f"{head}{TABLE_START}\n{option_check_table()}\n{TABLE_END}{rest.split(TABLE_END)[1]}", encoding="utf-8")
    print(f"wrote the option table of {path}")
