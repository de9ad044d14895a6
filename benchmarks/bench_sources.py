"""Benchmark: many small sources (issue 14 — "10,000 one-triplet sources score in ≤ 10 s").

Writes S one-triplet sources (synthetic 40-word passages, one JSONL file with a ``source`` column) and their vectors
as a precomputed ``.npz`` (hash vectors, d = 384: no forward pass is timed), then times the whole command

    ecisem score data.jsonl --encoder precomputed:vectors.npz --out DIR --quiet

as a process (load, flags, ρ, per-source ECI_sem with Shapley contributions, bootstrap CI, P(A > B), rank
stability, the outputs and their manifest), and prints the time per size with the machine load. The baseline is
the issue's figure for the code before this benchmark existed: 1,000 one-triplet sources in 38 s, 10,000 still
running after 10 minutes.

    python benchmarks/bench_sources.py                     # 1,000 and 10,000 sources
    python benchmarks/bench_sources.py --sizes 100 1000 10000 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_score import DIM, HashEncoder, synthetic  # noqa: E402

TARGET_S = 10.0
"""The issue's goal for 10,000 one-triplet sources."""
BASELINE = {1000: 38.0}
"""Seconds measured by the hardening probe before the grouped uncertainty (the issue's text)."""


def write_inputs(n_sources: int, folder: Path) -> tuple[Path, Path]:
    """S one-triplet sources and the vectors of every text they use."""
    table = synthetic(n_sources, n_sources=1, seed=1)
    table["source"] = [f"src{i:05d}" for i in range(n_sources)]
    data = folder / "data.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for rec in table.to_dict(orient="records"):
            fh.write(json.dumps(rec) + "\n")
    texts = sorted(set(table["query"]) | set(table["positive"]) | set(table["negative"]))
    vectors = folder / "vectors.npz"
    np.savez(vectors, text=np.array(texts), embedding=HashEncoder().encode(texts, "passage"))
    return data, vectors


def time_command(data: Path, vectors: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "ecisem_core.cli", "score", str(data), "--encoder", f"precomputed:{vectors}",
           "--out", str(out), "--quiet", "--no-cache"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ecisem score failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start; d = {DIM}; each figure: median of {args.repeat} runs "
          "of the whole `ecisem score` process (Python start-up and imports included)")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data, vectors = write_inputs(n, Path(tmp))
            runs = [time_command(data, vectors, Path(tmp) / f"out{i}") for i in range(args.repeat)]
            rows = sum(1 for _ in (Path(tmp) / "out0" / "sources.csv").open()) - 1
        med = float(np.median(runs))
        line = (f"{n:>7,} one-triplet sources: median {med:6.2f} s (min {min(runs):.2f}, max {max(runs):.2f}); "
                f"{rows:,} rows in sources.csv; load average {os.getloadavg()[0]:.2f}")
        if n in BASELINE:
            line += f"; baseline {BASELINE[n]:.0f} s → {BASELINE[n] / med:.1f}× faster"
        if n == 10_000:
            line += f"; goal ≤ {TARGET_S:.0f} s: {'met' if med <= TARGET_S else 'NOT met'}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
