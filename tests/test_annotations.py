"""Tests of ecisem_core.curation.annotations: the store's API, agreement, flagger precision, and durability under
concurrent writers, restarts and a writer killed mid-transaction."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from ecisem_core.curation.annotations import (
    AnnotationStore,
    FlaggerPrecision,
    Progress,
    cohen_kappa,
    item_consensus,
    normalise_verdict,
)
from ecisem_core.errors import InputError

N_PROCS = 8
PER_PROC = 200


def items_frame(n: int, flagged: bool | None = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": [f"q{i}" for i in range(n)],
            "negative_id": [f"n{i}" for i in range(n)],
            "query": [f"query {i}" for i in range(n)],
            "positive": [f"positive {i}" for i in range(n)],
            "negative": [f"negative {i}" for i in range(n)],
            "source": ["bm25"] * n,
            "fn_score": np.linspace(1, 0, n) if n > 1 else [0.5] * n,
            "fn_flag": [flagged] * n,
            "fn_reasons": ["encoder prefers the negative"] * n,
        }
    )


@pytest.fixture()
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "ann.sqlite")


def test_wal_mode_and_schema(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"batches", "items", "verdicts"} <= tables
    conn.close()
    assert store.integrity_check() == "ok"


def test_batches_items_and_next_item(store):
    b = store.create_batch("first", items_frame(3), settings={"encoder": "minilm", "min_score": 0.5})
    assert store.add_items(b, items_frame(2)) == 2
    listed = store.list_batches()
    assert listed.loc[0, ["id", "name", "n_items", "n_verdicts"]].tolist() == [b, "first", 5, 0]
    assert listed.loc[0, "settings"] == {"encoder": "minilm", "min_score": 0.5}
    items = store.items(b)
    assert items["position"].tolist() == [0, 1, 2, 3, 4]
    assert bool(items.loc[0, "fn_flag"]) and items.loc[0, "fn_score"] == 1.0
    first = store.next_item(b, "ann")
    assert first["position"] == 0 and first["query"] == "query 0"
    store.record_verdict(first["id"], "ann", "unsure")  # unsure also counts as answered
    assert store.next_item(b, "ann")["position"] == 1
    assert store.next_item(b, "other")["position"] == 0
    assert store.progress(b, "ann") == Progress(1, 5)
    assert store.progress(b, "ann").fraction == pytest.approx(0.2)


def test_verdict_history_is_kept_and_the_latest_is_current(store):
    b = store.create_batch("b", items_frame(2))
    item = int(store.items(b).loc[0, "id"])
    store.record_verdict(item, "ann", "true_negative", "first look")
    store.record_verdict(item, "ann", "FN", "changed my mind")
    cur = store.verdicts(b)
    assert len(cur) == 1 and cur.loc[0, "verdict"] == "false_negative" and cur.loc[0, "comment"] == "changed my mind"
    hist = store.verdicts(b, history=True)
    assert hist["verdict"].tolist() == ["true_negative", "false_negative"]
    assert store.progress(b, "ann") == Progress(1, 2)


def test_bad_input_is_refused(store):
    b = store.create_batch("b", items_frame(1))
    item = int(store.items(b).loc[0, "id"])
    with pytest.raises(InputError, match="unknown verdict"):
        store.record_verdict(item, "ann", "maybe")
    with pytest.raises(InputError, match="annotator"):
        store.record_verdict(item, "  ", "fn")
    with pytest.raises(InputError, match="no item"):
        store.record_verdict(item + 99, "ann", "fn")
    with pytest.raises(InputError, match="no batch"):
        store.add_items(b + 5, items_frame(1))
    with pytest.raises(InputError, match="lack column"):
        store.create_batch("x", items_frame(1).drop(columns=["negative"]))
    assert store.verdicts(b).empty


def test_record_verdicts_by_triplet_ids_all_or_nothing(store):
    b = store.create_batch("b", items_frame(3))
    ok = pd.DataFrame({"query_id": ["q0", "q1"], "negative_id": ["n0", "n1"], "verdict": ["fn", "tn"],
                       "annotator": ["ann", "ann"], "comment": ["", np.nan]})
    assert store.record_verdicts(b, ok) == 2
    bad = pd.DataFrame({"query_id": ["q2", "q9"], "negative_id": ["n2", "n9"], "verdict": ["fn", "fn"],
                        "annotator": ["x", "x"], "file": ["v.csv", "v.csv"], "line": [2, 3]})
    with pytest.raises(InputError) as err:
        store.record_verdicts(b, bad)
    assert str(err.value).startswith("v.csv, line 3:") and "q9" in str(err.value)
    assert len(store.verdicts(b)) == 2  # the good row of the failed import was not kept


def test_cohen_kappa_values():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    cats = np.array(["false_negative", "true_negative", "unsure"])
    for _ in range(10):
        a = cats[rng.integers(0, 3, 40)]
        b = np.where(rng.random(40) < 0.6, a, cats[rng.integers(0, 3, 40)])
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(np.array(["true_negative"] * 3), np.array(["true_negative"] * 3)) != cohen_kappa(
        np.array(["true_negative"] * 3), np.array(["true_negative"] * 3)
    )  # NaN: p_e = 1
    assert np.isnan(cohen_kappa(np.array([]), np.array([])))


def test_agreement_and_flagger_precision(store):
    b = store.create_batch("b", items_frame(4))
    ids = store.items(b)["id"].tolist()
    a_verdicts = ["fn", "fn", "tn", "tn"]
    b_verdicts = ["fn", "tn", "tn", "tn"]
    c_verdicts = ["fn", "fn", "unsure", None]
    for item, va, vb, vc in zip(ids, a_verdicts, b_verdicts, c_verdicts):
        store.record_verdict(item, "alice", va)
        store.record_verdict(item, "bob", vb)
        if vc:
            store.record_verdict(item, "carol", vc)
    agr = store.agreement(b).set_index(["annotator_a", "annotator_b"])
    # alice vs bob: observed 3/4; p_e = (2/4·1/4) + (2/4·3/4) = 0.5 → κ = (0.75 − 0.5)/0.5 = 0.5
    assert agr.loc[("alice", "bob"), "kappa"] == pytest.approx(0.5)
    assert agr.loc[("alice", "bob"), "observed"] == pytest.approx(0.75)
    assert agr.loc[("alice", "carol"), "n_items"] == 3
    # consensus: item0 3 FN → FN; item1 alice FN, bob TN, carol FN → FN; item2 TN (carol unsure); item3 TN
    cons = item_consensus(store.verdicts(b)).set_index("item_id")
    assert cons.loc[ids, "label"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert store.flagger_precision(b) == FlaggerPrecision(0.5, 4, 2, 0)


def test_flagger_precision_counts_only_flagged_items_and_ties_are_undecided(store):
    items = pd.concat([items_frame(2, flagged=True), items_frame(2, flagged=False)], ignore_index=True)
    b = store.create_batch("b", items)
    ids = store.items(b)["id"].tolist()
    store.record_verdict(ids[0], "a", "fn")
    store.record_verdict(ids[0], "b", "tn")  # tie → undecided
    store.record_verdict(ids[1], "a", "fn")
    store.record_verdict(ids[2], "a", "tn")  # unflagged: ignored
    assert store.flagger_precision(b) == FlaggerPrecision(1.0, 1, 1, 1)
    empty = store.create_batch("empty", items_frame(1))
    assert np.isnan(store.flagger_precision(empty).precision)


def test_normalise_verdict_aliases():
    assert normalise_verdict("False-Negative") == "false_negative"
    assert normalise_verdict("TN") == "true_negative"
    with pytest.raises(InputError):
        normalise_verdict(None)


# --------------------------------------------------------------------------------------------------------------
# durability


def test_verdicts_survive_a_restart(tmp_path):
    path = tmp_path / "ann.sqlite"
    s1 = AnnotationStore(path)
    b = s1.create_batch("b", items_frame(3))
    for item in s1.items(b)["id"]:
        s1.record_verdict(int(item), "ann", "tn", "é ✓ unicode kept")
    del s1
    s2 = AnnotationStore(path)  # a new process or app run opens the same file
    got = s2.verdicts(b)
    assert len(got) == 3 and set(got["comment"]) == {"é ✓ unicode kept"}
    assert s2.progress(b, "ann") == Progress(3, 3) and s2.next_item(b, "ann") is None


def _annotate(path: str, batch_id: int, annotator: str, n: int, queue) -> None:
    store = AnnotationStore(path)  # every process opens the store itself (as an app instance would)
    ids = store.items(batch_id)["id"].tolist()
    written = []
    for k in range(n):
        verdict = ("false_negative", "true_negative", "unsure")[k % 3]
        written.append(store.record_verdict(ids[k % len(ids)], annotator, verdict, f"{annotator}-{k}"))
    queue.put((annotator, written))


def test_concurrent_annotators_lose_no_verdict(tmp_path):
    path = str(tmp_path / "ann.sqlite")
    store = AnnotationStore(path)
    b = store.create_batch("concurrent", items_frame(PER_PROC))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_annotate, args=(path, b, f"ann{k}", PER_PROC, queue)) for k in range(N_PROCS)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    elapsed = time.perf_counter() - t0
    hist = store.verdicts(b, history=True)
    assert len(hist) == N_PROCS * PER_PROC
    assert set(hist["verdict_id"]) == {v for ids in results.values() for v in ids}
    for k in range(N_PROCS):
        mine = hist[hist["annotator"] == f"ann{k}"]
        assert sorted(mine["comment"]) == sorted(f"ann{k}-{j}" for j in range(PER_PROC))
    assert len(store.verdicts(b)) == N_PROCS * PER_PROC  # 200 items × 8 annotators, one current each
    assert store.integrity_check() == "ok"
    print(f"{N_PROCS} processes × {PER_PROC} verdicts in {elapsed:.2f} s")


_WRITER = textwrap.dedent(
    """
    import sys, time
    from ecisem_core.curation.annotations import AnnotationStore
    store = AnnotationStore(sys.argv[1])
    batch, item, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if mode == "open-transaction":
        with store.transaction() as conn:
            for k in range(500):
                conn.execute(
                    "INSERT INTO verdicts (item_id, annotator, verdict, comment, created) VALUES (?, ?, ?, ?, ?)",
                    (item, "killed", "false_negative", f"uncommitted {k}", "now"),
                )
            print("inside", flush=True)
            time.sleep(120)
    else:  # commit verdicts one by one, reporting each committed id
        k = 0
        while True:
            vid = store.record_verdict(item, "looper", "true_negative", f"committed {k}")
            print(vid, flush=True)
            k += 1
    """
)


def _start_writer(path, batch, item, mode):
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(batch), str(item), mode],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_writer_killed_mid_transaction_leaves_a_consistent_store(tmp_path):
    path = tmp_path / "ann.sqlite"
    store = AnnotationStore(path)
    b = store.create_batch("b", items_frame(2))
    item = int(store.items(b).loc[0, "id"])
    committed = store.record_verdict(item, "alice", "fn", "before the crash")
    proc = _start_writer(path, b, item, "open-transaction")
    assert proc.stdout.readline().strip() == "inside"  # 500 rows written, not committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reopened = AnnotationStore(path)
    assert reopened.integrity_check() == "ok"
    hist = reopened.verdicts(b, history=True)
    assert hist["verdict_id"].tolist() == [committed] and hist.loc[0, "comment"] == "before the crash"
    # the dead writer's lock is gone: a new write goes through at once
    t0 = time.perf_counter()
    reopened.record_verdict(item, "bob", "tn")
    assert time.perf_counter() - t0 < 5
    assert len(reopened.verdicts(b)) == 2


def test_writer_killed_between_commits_loses_no_acknowledged_verdict(tmp_path):
    path = tmp_path / "ann.sqlite"
    store = AnnotationStore(path)
    b = store.create_batch("b", items_frame(1))
    item = int(store.items(b).loc[0, "id"])
    proc = _start_writer(path, b, item, "loop")
    acknowledged = [int(proc.stdout.readline()) for _ in range(50)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reopened = AnnotationStore(path)
    assert reopened.integrity_check() == "ok"
    ids = set(reopened.verdicts(b, history=True)["verdict_id"])
    assert set(acknowledged) <= ids  # every verdict reported as committed is there (a few more may be)
    assert len(reopened.verdicts(b)) == 1  # one current verdict for (item, looper)
