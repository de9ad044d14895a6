"""Are the CLI's outputs on the bundled demo byte-identical to those of another commit?

    python scripts/compare_cli_outputs.py REV        # e.g. ec6db16, the commit before the package redesign

Checks out REV into a temporary git worktree, runs ``ecisem score`` and ``ecisem flag`` (every output format) on
``assets/demo/demo_triplets.jsonl`` with both trees (same interpreter, same embedding cache, so nothing is
encoded), and compares every file written byte for byte. Prints one line per file and exits 1 on any difference.
Used after refactors that must not change behaviour (issue: architecture).
"""
from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo" / "demo_triplets.jsonl"
RUNS: tuple[tuple[str, ...], ...] = (
    ("score", str(DEMO), "--out", "{out}/score", "--quiet"),
    ("flag", str(DEMO), "--out", "{out}/flag.jsonl", "--quiet"),
    ("flag", str(DEMO), "--out", "{out}/flag.csv", "--format", "csv", "--quiet"),
    ("flag", str(DEMO), "--out", "{out}/flag_ls.json", "--format", "label-studio", "--quiet"),
    ("flag", str(DEMO), "--out", "{out}/flag_argilla.jsonl", "--format", "argilla", "--quiet"),
)

NEW_FILES = frozenset({"run.json"})
"""File names the current tree writes that older commits did not (listed, not compared): the manifest of
``ecisem score`` (issue 14)."""


def run_cli(tree: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1",
           "ECISEM_CACHE_DIR": os.environ.get("ECISEM_CACHE_DIR", str(ROOT / ".ecisem_cache"))}
    out.mkdir(parents=True, exist_ok=True)
    for args in RUNS:
        argv = [a.format(out=out) for a in args]
        proc = subprocess.run([sys.executable, "-c", "import sys; from ecisem_core.cli import main; "
                               "sys.exit(main(sys.argv[1:]))", *argv], env=env, cwd=tree, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{tree}: ecisem {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", help="the commit to compare with")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.rev], check=True,
                       capture_output=True)
        try:
            run_cli(old, Path(tmp) / "out_old")
            run_cli(ROOT, Path(tmp) / "out_new")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        a, b = Path(tmp) / "out_old", Path(tmp) / "out_new"
        names = sorted({p.relative_to(a) for p in a.rglob("*") if p.is_file()}
                       | {p.relative_to(b) for p in b.rglob("*") if p.is_file()})
        for name in [n for n in names if n.name in NEW_FILES]:
            print(f"new (not compared)  {name}")
        names = [n for n in names if n.name not in NEW_FILES]
        bad = 0
        for name in names:
            same = (a / name).is_file() and (b / name).is_file() and filecmp.cmp(a / name, b / name, shallow=False)
            bad += not same
            print(f"{'identical' if same else 'DIFFERENT'}  {name}")
    print(f"{len(names) - bad} of {len(names)} files identical to {args.rev}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
