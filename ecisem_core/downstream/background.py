"""Validation runs in the background, started by the dashboard: the ``ecisem validate`` command line, start it in
its own process group with its output in ``run.log``, find it again, stop it like Ctrl-C (the finished runs stay
cached), and read the end of its log without terminal control codes (tqdm's carriage returns and escapes)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""Working folder of a background run (the project root, so ``python -m ecisem_core.cli`` resolves)."""
LOG_FILE = "run.log"
RUN_FILE = "run.json"

SMALL_EVAL_QUERIES = 200
SMALL_EVAL_PASSAGES = 2000
"""Evaluation set of a run started from the page (a seeded sample; the CLI's defaults are 500 / 5000)."""


def build_command(data: Sequence[str | Path], eval_spec: str, out: Path, *, per_source: int, epochs: int,
                  seeds: Sequence[int], eval_queries: int = SMALL_EVAL_QUERIES,
                  eval_passages: int = SMALL_EVAL_PASSAGES, python: str = sys.executable) -> list[str]:
    """``python -m ecisem_core.cli validate DATA... --eval EVAL --out OUT --per-source N --epochs E --seeds …
    --eval-queries Q --eval-passages P``."""
    return [python, "-m", "ecisem_core.cli", "validate", *[str(d) for d in data], "--eval", str(eval_spec),
            "--out", str(out), "--per-source", str(int(per_source)), "--epochs", str(int(epochs)),
            "--seeds", *[str(int(s)) for s in seeds], "--eval-queries", str(int(eval_queries)),
            "--eval-passages", str(int(eval_passages))]


@dataclass
class Run:
    """A background run: its process (when started by this server) and its folder."""

    out: Path
    pid: int
    proc: subprocess.Popen | None = None
    stopped: bool = False

    @property
    def log(self) -> Path:
        return self.out / LOG_FILE

    def returncode(self) -> int | None:
        if self.proc is not None:
            return self.proc.poll()
        try:
            os.kill(self.pid, 0)
            return None
        except OSError:
            return -1

    def status(self) -> str:
        """"running", "finished" (exit 0), "stopped" (by the user) or "failed"."""
        rc = self.returncode()
        if rc is None:
            return "running"
        if self.stopped:
            return "stopped"
        return "finished" if rc == 0 and (self.out / "validation.csv").is_file() else "failed"


_RUNS: dict[str, Run] = {}
"""Runs started by this server process, by output folder (survive a page reload)."""


def start_run(cmd: Sequence[str], out: Path, env: Mapping[str, str] | None = None) -> Run:
    """Start ``cmd`` in its own process group, output to ``out/run.log``, from the project folder; returns at
    once. ``out/run.json`` records the command and pid."""
    out.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                **(env or {})}
    with (out / LOG_FILE).open("wb") as log:
        proc = subprocess.Popen(list(cmd), cwd=str(PROJECT_ROOT), env=full_env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    (out / RUN_FILE).write_text(json.dumps({"pid": proc.pid, "command": list(cmd), "started": time.time()},
                                           indent=2) + "\n", encoding="utf-8")
    run = Run(out=out, pid=proc.pid, proc=proc)
    _RUNS[str(out)] = run
    return run


def get_run(out: str | Path) -> Run | None:
    """The run writing into ``out`` if this server started it."""
    return _RUNS.get(str(out))


def stop_run(run: Run, grace_s: float = 5.0) -> None:
    """Interrupt the run like Ctrl-C (SIGINT to its process group: completed runs stay cached), then kill it if
    it has not exited after ``grace_s`` seconds."""
    if run.returncode() is not None:
        return
    run.stopped = True
    try:
        os.killpg(run.pid, signal.SIGINT)
    except OSError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if run.returncode() is not None:
            return
        time.sleep(0.1)
    try:
        os.killpg(run.pid, signal.SIGKILL)
    except OSError:
        pass
    if run.proc is not None:
        run.proc.wait(timeout=5)


def tail(path: Path, lines: int = 15, max_bytes: int = 16_384) -> str:
    """The last ``lines`` lines of a log; progress-bar redraws (carriage returns) keep only their latest state."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            raw = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    out = []
    for line in ANSI.sub("", raw).split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if parts:
            out.append(parts[-1].rstrip())
    return "\n".join(out[-lines:])


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Terminal control sequences (colours, cursor moves) that must not reach the page."""
BAR = re.compile(r"^(?P<desc>[^:|]*?):?\s*(?P<pct>\d+)%\|[^|]*\|\s*(?P<done>\d+)/(?P<total>\d+)")
"""A tqdm progress line: ``desc:  40%|████      | 2/5 [...]``."""


def progress(text: str) -> tuple[str, int, int] | None:
    """(description, done, total) of the last tqdm bar in a log tail (None when there is none), so the page draws
    a real progress bar instead of the bar's characters."""
    for line in reversed(text.splitlines()):
        m = BAR.match(line.strip())
        if m:
            return m.group("desc").strip(), int(m.group("done")), int(m.group("total"))
    return None
