"""Rerun each surviving mutant of the sample in a fresh pytest process, on the tests mutmut maps to its function.

mutmut runs a mutant's tests in a child forked from a process that has already run the suite, so caches kept at
module level (the test helpers' cached renderers, the font loader's cache) still hold objects built by the
original code, and a mutant of a constructor can go unexercised: it is reported as surviving. A fresh process has
no such cache. Run from the project root after `mutmut run` (docs/testing.md):

    python scripts/mutation_recheck.py                    # every sampled survivor: killed / survived, per file
    python scripts/mutation_recheck.py --copy-tests       # first copy tests/ into mutants/ (tests added since)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mutation_sample import MODULES, _results, sample

MUTANTS = Path("mutants")


def recheck(name: str, tests: list[str]) -> int | None:
    """pytest's exit status for `name`'s tests with the mutant switched on (1: killed, 0: survived); None without tests."""
    if not tests:
        return None
    env = {**os.environ, "MUTANT_UNDER_TEST": name, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m",
                           "not slow and not subprocess", *tests], check=False, cwd=MUTANTS, env=env, capture_output=True,
                          timeout=3600).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copy-tests", action="store_true", help="copy tests/ into mutants/ first")
    parser.add_argument("--out", type=Path, default=Path("mutation-recheck.jsonl"), help="one JSON line per mutant")
    parser.add_argument("--only", nargs="+", help="modules to recheck (say hotstart.render.line); default: all")
    args = parser.parse_args()
    if args.copy_tests:
        shutil.copytree("tests", MUTANTS / "tests", dirs_exist_ok=True)
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())["tests_by_mangled_function_name"]
    results = _results()
    survivors = [n for n in sample(0.2, 0) if results.get(n) == "survived"
                 and (not args.only or n.rsplit(".", 1)[0] in args.only)]
    done = {json.loads(line)["mutant"] for line in args.out.read_text().splitlines()} if args.out.is_file() else set()
    todo = [n for n in survivors if n not in done]
    with ThreadPoolExecutor(2) as pool, args.out.open("a") as out:
        for name, code in zip(todo, pool.map(lambda n: recheck(n, sorted(stats.get(n.rsplit("__mutmut_", 1)[0], []))), todo)):
            out.write(json.dumps({"mutant": name, "exit_code": code}) + "\n")
            out.flush()
    rows = [json.loads(line) for line in args.out.read_text().splitlines()]
    for module, label in MODULES.items():
        mine = [r for r in rows if r["mutant"].startswith(module + ".")]
        killed = sum(r["exit_code"] not in (0, None) for r in mine)
        print(f"{label}: {len(mine)} reported surviving, {killed} killed in a fresh process")


if __name__ == "__main__":
    main()
