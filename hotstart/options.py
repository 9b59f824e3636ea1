"""Option checks every command shares, so that a bad value is refused with one line before any work starts.

Each check is an argparse `type`: the parser calls it on the option's text, and a bad value becomes the
parser's one-line error ("hotstart finetune: argument --epochs: must be an integer >= 1, got 0"), with no
model loaded and nothing written. A new command gets the same checks by naming them as its options' types.
The folder lock (`folder_lock`) is the shared guard of every command that writes a folder.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import HotStartError


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer option from `low` to `high` (inclusive; None: no upper bound)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got '{text}'") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    check.__name__, check.allowed = f"int_range({low}, {high})", allowed  # type: ignore[attr-defined]
    return check


def float_range(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """A finite number option from `low` (excluded with `low_open`) to `high` (inclusive; None: no bound)."""
    bottom = f"> {low:g}" if low_open else f">= {low:g}"
    allowed = f"a number {bottom}" if high is None else f"a number {bottom} and <= {high:g}"

    def check(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got '{text}'") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text}")
        return value

    check.__name__, check.allowed = f"float_range({low}, {high})", allowed  # type: ignore[attr-defined]
    return check


positive_int = int_range(1)
"""Counts of things: epochs, sequences, batch sizes, characters."""
non_negative_int = int_range(0)
positive_float = float_range(0.0, low_open=True)
"""Learning rates and other scales that must be above zero."""
dropout_rate = float_range(0.0, 0.99)
"""A dropout probability."""

CHECKS: dict[str, Callable[[str], object]] = {
    "int": int, "float": float, "positive_int": positive_int, "non_negative_int": non_negative_int,
    "two_or_more": int_range(2), "positive_float": positive_float, "dropout_rate": dropout_rate}
"""The checks a config field's flag may name (config.py `flag`), by name: the generated flag table is JSON."""


def int_list(text: str, option: str, example: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); anything else, or nothing, is a one-line error naming `option`."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise HotStartError(f"{option} takes comma-separated integers like {example}, got '{text}'") from None
    if not values:
        raise HotStartError(f"{option} is empty; pass comma-separated integers like {example}")
    return values


def output_file(*suffixes: str) -> Callable[[str], str]:
    """A file a command writes: its name must end in one of `suffixes` (the format is chosen by it) and it must
    not be a folder. Whether it can be written is known only by writing: see `write_file`."""
    allowed = " or ".join(suffixes)

    def check(text: str) -> str:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; pass a file name ending in {allowed}")
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} must end in {allowed}, the format written")
        return text

    check.__name__, check.allowed = f"output_file{suffixes}", f"a file ending in {allowed}"  # type: ignore[attr-defined]
    return check


png_file = output_file(".png")


def write_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write(path)` after making its folder; an OSError (read-only folder, full disk, a file where a folder
    should be) becomes one line naming the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
    except OSError as exc:
        raise HotStartError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from None
    return path


def valid_text(value: str, option: str) -> str:
    """`value` as given on the command line, or an error when it holds bytes that are not UTF-8 (Python keeps
    them as lone surrogates, which no renderer or file can take)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HotStartError(f"{option} is not valid UTF-8 text (byte {exc.start}); pass it in UTF-8") from None
    return value


TEXT_OPTIONS = ("text", "prompt", "chars")
"""Options whose value is text to draw or continue (paths may be any bytes the file system allows)."""


def check_text_arguments(args: argparse.Namespace) -> None:
    """Every text option (TEXT_OPTIONS) of a parsed command line is valid UTF-8 (see `valid_text`)."""
    for name in TEXT_OPTIONS:
        if isinstance(value := getattr(args, name, None), str):
            valid_text(value, f"--{name}")


@contextmanager
def folder_lock(folder: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (made if missing) while a command writes it: a second command on the
    same folder at the same time is refused with one line instead of silently writing over the first. The lock
    is on the folder itself (no lock file is left behind) and ends with the command, also when it fails or is
    killed (the operating system drops it with the process). A folder the lock made and the command left empty
    (it was refused before writing) is removed. Under torchrun only rank 0 writes, so only it locks."""
    import fcntl

    if os.environ.get("RANK", "0") != "0":
        yield
        return
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise HotStartError(f"cannot create {what} {folder}: {exc.strerror}; choose another --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another command holds it: its folder is left alone
            raise HotStartError(f"another command is writing {what} {folder} right now; wait for it to finish, "
                                "or choose another --out") from None
        try:
            yield
        finally:
            if created:  # a command refused before writing leaves nothing behind
                with contextlib.suppress(OSError):  # not empty, or gone: nothing to tidy
                    folder.rmdir()
    finally:
        os.close(fd)  # closing the descriptor releases the lock
