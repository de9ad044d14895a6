"""Outputs whole or absent (issue 14): ``ecisem score`` writes into a folder beside the target and moves it into
place with a manifest; a kill -9 at any moment leaves the complete old run or the complete new one."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecisem_core.cli import main
from ecisem_core.errors import InputError
from ecisem_core.report.outputs import MANIFEST, read_manifest, sha256_file, write_outputs

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "assets" / "demo" / "demo_triplets.jsonl"
REPO_CACHE = ROOT / ".ecisem_cache"


def _writers(text: str) -> dict:
    return {"a.txt": lambda p: p.write_text(text, encoding="utf-8"),
            "b.txt": lambda p: p.write_text(text * 2, encoding="utf-8")}


def test_manifest_lists_inputs_files_and_versions(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text("x\n", encoding="utf-8")
    out = write_outputs(tmp_path / "out", _writers("one"), inputs=[data], settings={"k": 1}, command="t")
    m = read_manifest(out)
    assert m["complete"] and m["problems"] == []
    assert [f["name"] for f in m["files"]] == ["a.txt", "b.txt"]
    assert m["files"][0]["sha256"] == sha256_file(out / "a.txt") and m["files"][1]["size"] == 6
    assert m["inputs"][0]["sha256"] == sha256_file(data)
    assert set(m["versions"]) == {"ecisem", "numpy", "torch"} and m["settings"] == {"k": 1}
    assert m["started"] <= m["finished"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out"]   # no temporary folder left


def test_replacing_a_run_and_detecting_an_incomplete_one(tmp_path):
    out = tmp_path / "out"
    write_outputs(out, _writers("one"))
    write_outputs(out, _writers("two"))
    assert (out / "a.txt").read_text() == "two" and read_manifest(out)["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (out / "b.txt").write_text("tampered")
    m = read_manifest(out)
    assert not m["complete"] and "b.txt" in m["problems"][0] and "incomplete" in m["problems"][0]
    (out / MANIFEST).unlink()
    assert read_manifest(out)["problems"] == ["incomplete: run.json is missing"]


def test_refuses_a_file_or_a_folder_holding_other_files(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        write_outputs(f, _writers("one"))
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="thesis.tex"):
        write_outputs(d, _writers("one"))
    assert (d / "thesis.tex").read_text() == "precious"


def test_a_failing_writer_leaves_the_old_run(tmp_path):
    out = tmp_path / "out"
    write_outputs(out, _writers("one"))

    def boom(p):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_outputs(out, {"a.txt": lambda p: p.write_text("new"), "b.txt": boom})
    assert (out / "a.txt").read_text() == "one" and read_manifest(out)["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_folder_left_aside_is_put_back(tmp_path):
    out = tmp_path / "out"
    write_outputs(out, _writers("one"))
    os.rename(out, tmp_path / ".out.old-deadbeef")      # a kill between the two renames of the fallback
    assert read_manifest(out)["complete"] and (out / "a.txt").read_text() == "one"


def test_cli_score_writes_the_manifest_and_refuses_a_file_as_out(tmp_path, capsys):
    rows = [{"query": f"q {i} apple", "positive": f"p {i} apple pie", "negative": f"n {i} pear tart",
             "source": "s1" if i % 2 else "s2"} for i in range(12)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["score", str(data), "--encoder", "tfidf", "--out", str(out), "--quiet", "--bootstrap", "5"]) == 0
    m = read_manifest(out)
    assert m["complete"] and {f["name"] for f in m["files"]} == {"sources.csv", "triplets.parquet",
                                                                 "settings.json", "load_report.json"}
    assert main(["score", str(data), "--encoder", "tfidf", "--out", str(data), "--quiet"]) == 2
    assert "d.jsonl" in capsys.readouterr().err


def _files(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in folder.iterdir() if p.name != MANIFEST}


def test_kill_9_at_random_moments_leaves_the_old_or_the_new_run(tmp_path):
    if not REPO_CACHE.exists():
        pytest.skip("the demo's embedding cache (.ecisem_cache, made by scripts/setup.sh) is missing")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ECISEM_CACHE_DIR=str(REPO_CACHE))
    out = tmp_path / "out"

    def start(seed: int) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "ecisem_core.cli", "score", str(DEMO), "--out", str(out),
                                 "--quiet", "--seed", str(seed), "--bootstrap", "50"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    t0 = time.monotonic()
    proc = start(0)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    duration = time.monotonic() - t0
    old = _files(out)
    new = None
    rng = random.Random(14)
    moments = sorted(rng.uniform(0.2, 1.1) * duration for _ in range(5))
    for i, moment in enumerate(moments):
        proc = start(1)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
        m = read_manifest(out)
        assert m["complete"], (i, moment, m["problems"])
        got = _files(out)
        if got != old:
            new = new or got
            assert got == new, f"kill {i} at {moment:.2f}s: a mix of runs"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.old-")]
    proc = start(1)
    assert proc.wait(timeout=600) == 0
    assert read_manifest(out)["complete"] and (new is None or _files(out) == new)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]   # stale temporary folders removed


def test_the_two_rename_fallback_and_a_symlinked_target(tmp_path, monkeypatch):
    from ecisem_core.report import outputs

    out = tmp_path / "out"
    write_outputs(out, _writers("one"))
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)      # a platform without renameat2
    write_outputs(out, _writers("two"))
    assert (out / "a.txt").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    monkeypatch.undo()
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    write_outputs(link, _writers("three"))
    assert read_manifest(link)["complete"] and not link.is_symlink() and real.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "out", "real"]
