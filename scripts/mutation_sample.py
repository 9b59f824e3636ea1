"""Print a seeded random sample of mutmut's mutant names for the files docs/testing.md measures.

Running every mutant of those files takes hours on 2 CPU cores (a surviving mutant reruns every test
that reaches its function); a fixed random sample estimates the score in a fraction of that time:

    mutmut run hotstart.models.fused_loss.x_chunk_rows__mutmut_1   # generates every mutant, runs one
    mutmut run $(python scripts/mutation_sample.py)        # the sample (20%, seed 0)
    python scripts/mutation_sample.py --score              # killed / checked, per file

The names come from `mutmut results --all true`.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess

# The training loop's functions in training/loop.py (its other functions set up and close a run).
LOOP = ("train", "_train", "_loop", "lr_at", "train_step", "eval_due", "weights_finite", "_evaluation_row",
        "make_optimizer", "_check_same_corpus", "ǁ_Progressǁreset_window")
# Measured modules under the name each had before the package was split into subpackages: the sample
# is drawn in the order of these names, so it is the same sample as the one docs/testing.md scored.
MODULES = {"hotstart.render.glyph": "render", "hotstart.data.prepared": "data",
           "hotstart.training.checkpoint": "checkpoint", "hotstart.models.fused_loss": "fused_loss",
           "hotstart.training.loop": "train"}
# Files added to the measurement later are sampled on their own (same fraction, same seed), so that
# adding one leaves the sample of the files above exactly as docs/testing.md first scored it.
ADDED = {"hotstart.render.line": "line"}
MODULES.update(ADDED)


def in_scope(name: str) -> bool:
    """True for mutants of the measured files and of the training loop's functions.

    mutmut names a mutant hotstart.PACKAGE.MODULE.x_FUNCTION__mutmut_N, or ...MODULE.xǁCLASSǁMETHOD__mutmut_N.
    """
    module, mangled = name.rsplit(".", 1)
    function = re.sub(r"__mutmut_\d+$", "", mangled)
    function = function[2:] if function.startswith("x_") else function[1:]
    return module in MODULES and (MODULES[module] != "train" or function in LOOP)


def _old_name(name: str) -> str:
    """The mutant's name when the first measured modules sat flat in hotstart/ (the sample's sort key)."""
    module, mangled = name.rsplit(".", 1)
    return f"hotstart.{MODULES[module]}.{mangled}"


def _results() -> dict[str, str]:
    """mutmut's status of every mutant it generated: name -> killed, survived, not checked, ..."""
    listing = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^\s*(hotstart\.\S+?): (.+?)\s*$", listing, flags=re.MULTILINE))


def sample(fraction: float, seed: int) -> list[str]:
    """The seeded sample of in-scope mutant names, sorted: the first files' sample, then each added file's."""
    in_scope_names = [n for n in _results() if in_scope(n)]
    groups = [sorted((n for n in in_scope_names if n.rsplit(".", 1)[0] not in ADDED), key=_old_name)]
    groups += [sorted(n for n in in_scope_names if n.rsplit(".", 1)[0] == module) for module in ADDED]
    picked = []
    for names in groups:
        picked += random.Random(seed).sample(names, round(len(names) * fraction))
    return sorted(picked)


def score(names: list[str]) -> str:
    """Killed / checked over `names`, per file and in all, as a markdown table."""
    results = _results()
    table = {}
    for name in names:
        module = MODULES[name.rsplit(".", 1)[0]]
        row = table.setdefault(module, {"killed": 0, "survived": 0, "other": 0})
        status = results.get(name, "not checked")
        row["killed" if status == "killed" else "survived" if status == "survived" else "other"] += 1
    table["all"] = {k: sum(r[k] for r in table.values()) for k in ("killed", "survived", "other")}
    lines = ["| file | mutants | killed | survived | not run | score |", "|---|---|---|---|---|---|"]
    for module, r in table.items():
        checked = r["killed"] + r["survived"]
        rate = f"{100 * r['killed'] / checked:.1f}%" if checked else "-"
        label = module if module == "all" else f"{module}.py" + (" (the loop)" if module == "train" else "")
        lines.append(f"| {label} | {sum(r.values())} | {r['killed']} | {r['survived']} | {r['other']} | {rate} |")
    return "\n".join(lines)


def main() -> None:
    """Print the sampled names, one per line, or (--score) the sample's score."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.2, help="share of the mutants to sample (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--score", action="store_true", help="print the sample's score from `mutmut results`")
    args = parser.parse_args()
    names = sample(args.fraction, args.seed)
    print(score(names) if args.score else "\n".join(names))


if __name__ == "__main__":
    main()
