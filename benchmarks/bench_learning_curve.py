"""Benchmark: the review queue's learning curve (issue 12, item 5 — "AUC ≥ 0.90 after ≤ 100 verdicts").

A simulated annotator answers from known labels, batch after batch (:func:`ecisem_core.curation.active.simulate_queue`),
in three orders: ``random``, ``top`` (highest hand-set fn_score first, the review list's order) and ``uncertainty``
(the queue of :func:`ecisem_core.curation.active.next_items`: cold start, then retrain after each batch and offer
the items whose P(false negative) is closest to ½ mixed with the top-scored ones). At 20, 40, 60, 80, 100, 150, 200
verdicts the learned scorer is trained on the verdicts so far and its ROC AUC measured

* on a fixed **held-out** set: :data:`HOLDOUT` of the queries (all their items), drawn per seed, never offered —
  the unbiased figure, the one the goal is read on;
* on the **remaining** items (not judged yet, not held out): what the queue would still show (biased by the order);

over :data:`SEEDS` seeds (mean, and min–max), with the hand-set fn_score's AUC on the same held-out items as the
reference line.

Datasets (one row per item = (query, negative)):

* ``demo`` — the bundled demo (assets/demo, shipped MiniLM vectors), label = the planted ``fn_label``;
* ``med``, ``cisi`` — real human relevance judgements: the classic test collections in BEIR layout under
  ``../shared/data/external/``. Per judged query one relevant document (seeded draw) is the labeled positive;
  the candidate negatives are the top :data:`DEPTH` documents by the default encoder (all-MiniLM-L6-v2) and the
  top :data:`DEPTH` by BM25 (``ecisem_core.downstream.mining``), the positive excluded; label = 1 (a false
  negative) when the candidate is in the query's qrels, else 0. Encodings are cached under
  ``.study_work/learning_curve/`` (git-ignored). A missing collection is skipped with a message.

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/bench_learning_curve.py            # all sets, 5 seeds
    python benchmarks/bench_learning_curve.py --sets demo --seeds 3

Prints a table per dataset and writes ``benchmarks/results/learning_curve.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecisem_core.curation.active import CHECKPOINTS, COLD_STARTS, ORDERS, simulate_queue  # noqa: E402
from ecisem_core.curation.baselines import roc_auc  # noqa: E402
from ecisem_core.curation.fn_score import flag_triplets  # noqa: E402

EXTERNAL = ROOT.parent / "shared" / "data" / "external"
WORK = ROOT / ".study_work" / "learning_curve"
OUT = ROOT / "benchmarks" / "results" / "learning_curve.md"
SETS = ("demo", "med", "cisi")
DEPTH = 15
"""Candidates per query from each retriever (dense, BM25) before the union."""
HOLDOUT = 0.3
"""Share of queries held out per seed."""
SEEDS = 5
GOAL_AUC, GOAL_N = 0.90, 100


# ----------------------------------------------------------------------------------------------- data


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a.astype(np.float64), b.astype(np.float64))


def with_similarities(t: pd.DataFrame, encoder, **kw) -> pd.DataFrame:
    from ecisem_core.embed.texts import embed_texts

    q = embed_texts(t["query"].tolist(), "query", encoder, **kw)
    p = embed_texts(t["positive"].tolist(), "passage", encoder, **kw)
    n = embed_texts(t["negative"].tolist(), "passage", encoder, **kw)
    t = t.assign(s_qp=_cosines(q, p), s_qn=_cosines(q, n), s_pn=_cosines(p, n))
    return t.assign(fn_score=flag_triplets(t)["fn_score"].to_numpy())


def demo_items() -> tuple[pd.DataFrame, np.ndarray]:
    from ecisem_core.demo import EMBEDDINGS_PATH, TRIPLETS_PATH
    from ecisem_core.embed.encoders import PrecomputedEncoder

    t = pd.read_json(TRIPLETS_PATH, lines=True, dtype={"query_id": str, "negative_id": str})
    t = t.drop_duplicates(["query_id", "negative_id"]).reset_index(drop=True)
    t = with_similarities(t, PrecomputedEncoder(str(EMBEDDINGS_PATH)), use_cache=False)
    return t, t["fn_label"].to_numpy(dtype=np.float64)


def beir_items(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    from ecisem_core.downstream import mining
    from ecisem_core.embed.encoders import default_encoder
    from ecisem_core.embed.texts import embed_texts
    from ecisem_core.io.evaldata import load_beir

    data = load_beir(EXTERNAL / name)
    doc_ids = sorted(data.corpus)
    docs = [data.corpus[d] for d in doc_ids]
    qids = sorted(data.qrels)
    rng = np.random.default_rng(0)
    pos = {q: sorted(data.qrels[q])[rng.integers(len(data.qrels[q]))] for q in qids}
    enc = default_encoder()
    kw = dict(cache_dir=WORK / "embeddings")
    dq = embed_texts([data.queries[q] for q in qids], "query", enc, **kw).astype(np.float64)
    dd = embed_texts(docs, "passage", enc, **kw).astype(np.float64)
    col = {d: j for j, d in enumerate(doc_ids)}
    exclude = [np.array([col[pos[q]]]) for q in qids]
    dense = mining.rank_rows(mining.masked(dq @ dd.T, exclude), DEPTH)
    bm25 = mining.rank_rows(mining.masked(mining.bm25_scores([data.queries[q] for q in qids], docs), exclude), DEPTH)
    rows = []
    for i, q in enumerate(qids):
        seen: dict[int, str] = {}
        for source, ranked in (("dense", dense[i]), ("bm25", bm25[i])):
            for j in ranked[ranked >= 0]:
                seen[int(j)] = "bm25+dense" if int(j) in seen else source
        for j, source in seen.items():
            rows.append({"query_id": q, "negative_id": doc_ids[j], "query": data.queries[q],
                         "positive": data.corpus[pos[q]], "negative": docs[j], "source": "mined",
                         "retrieved_by": source, "fn_label": int(doc_ids[j] in data.qrels[q])})
    t = pd.DataFrame(rows)
    vec = dict(zip(doc_ids, dd))
    qv = dict(zip(qids, dq))
    t = t.assign(s_qp=[float(qv[q] @ vec[pos[q]]) for q in t["query_id"]],
                 s_qn=[float(qv[q] @ vec[d]) for q, d in zip(t["query_id"], t["negative_id"])],
                 s_pn=[float(vec[pos[q]] @ vec[d]) for q, d in zip(t["query_id"], t["negative_id"])])
    t = t.assign(fn_score=flag_triplets(t)["fn_score"].to_numpy())
    return t, t["fn_label"].to_numpy(dtype=np.float64)


def load_set(name: str) -> tuple[pd.DataFrame, np.ndarray] | None:
    if name == "demo":
        return demo_items()
    if not (EXTERNAL / name / "corpus.jsonl").is_file():
        print(f"SKIP {name}: {EXTERNAL / name} not found (the ../shared data set is missing)", flush=True)
        return None
    return beir_items(name)


# ----------------------------------------------------------------------------------------------- runs


def holdout_mask(t: pd.DataFrame, seed: int) -> np.ndarray:
    """:data:`HOLDOUT` of the queries (all their items), seeded."""
    queries = np.array(sorted(t["query_id"].astype(str).unique()))
    rng = np.random.default_rng([seed, 99])
    held = set(rng.choice(queries, size=max(1, int(round(HOLDOUT * queries.size))), replace=False))
    return t["query_id"].astype(str).isin(held).to_numpy()


def run_set(t: pd.DataFrame, y: np.ndarray, seeds: int, orders=ORDERS, checkpoints=CHECKPOINTS, **kw) -> pd.DataFrame:
    frames = []
    for seed in range(seeds):
        held = holdout_mask(t, seed)
        for order in orders:
            c = simulate_queue(t, y, order=order, checkpoints=checkpoints, holdout=held, seed=seed, **kw)
            frames.append(c.assign(order=order, seed=seed))
    return pd.concat(frames, ignore_index=True)


def _cell(v: pd.Series) -> str:
    v = v.dropna()
    if v.empty:
        return "—"
    mid = f"{v.mean():.3f}"
    return mid if v.size == 1 or v.min() == v.max() else f"{mid} ({v.min():.2f}–{v.max():.2f})"


def summarise(curves: pd.DataFrame, seeds: int) -> pd.DataFrame:
    rows = []
    for (order, n), g in curves.groupby(["order", "n_verdicts"], sort=False):
        rows.append({"order": order, "verdicts": int(n),
                     "FN judged": f"{g['n_fn'].mean():.1f}",
                     "AUC held-out": _cell(g["auc_holdout"]) + ("" if g["auc_holdout"].notna().sum() == seeds
                                                               else f" [{g['auc_holdout'].notna().sum()}/{seeds}]"),
                     "AUC remaining": _cell(g["auc_remaining"]),
                     "CV AUC": _cell(g["cv_auc"]),
                     "fn_score held-out": _cell(g["fn_score_auc_holdout"])})
    out = pd.DataFrame(rows)
    out["order"] = pd.Categorical(out["order"], list(ORDERS))
    return out.sort_values(["order", "verdicts"], kind="stable").reset_index(drop=True)


def ceiling(t: pd.DataFrame, y: np.ndarray, seeds: int) -> str:
    """Held-out AUC of the learned scorer trained on *every* other item: what the features allow at best."""
    from ecisem_core.curation.fn_model import train_fn_model

    aucs = []
    for seed in range(seeds):
        held = holdout_mask(t, seed)
        model = train_fn_model(t, np.where(held, np.nan, y), seed=seed)
        aucs.append(roc_auc(y[held], model.predict(t)[held]))
    return (f"ceiling of the features (scorer trained on all {int((~holdout_mask(t, 0)).sum())}± non-held-out "
            f"items): held-out AUC {np.mean(aucs):.3f} ({min(aucs):.2f}–{max(aucs):.2f})")


def cold_start_table(t: pd.DataFrame, y: np.ndarray, seeds: int) -> pd.DataFrame:
    """The uncertainty queue with each cold start: mean held-out AUC (and false negatives judged) early on."""
    marks = (20, 40, 60, 100)
    rows = []
    for cold in COLD_STARTS:
        frames = []
        for seed in range(seeds):
            frames.append(simulate_queue(t, y, order="uncertainty", checkpoints=marks, holdout=holdout_mask(t, seed),
                                         seed=seed, cold_start=cold))
        c = pd.concat(frames)
        row = {"cold start": cold}
        for n, g in c.groupby("n_verdicts"):
            ok = g["auc_holdout"].notna().sum()
            auc = f"{g['auc_holdout'].mean():.3f}" if ok else "no model"
            row[f"{n} verdicts"] = auc + ("" if ok in (0, seeds) else f" [{ok}/{seeds}]") + \
                f" ({g['n_fn'].mean():.0f} FN)"
        rows.append(row)
    return pd.DataFrame(rows)


def goal_line(curves: pd.DataFrame) -> str:
    """Per order: held-out AUC at :data:`GOAL_N` verdicts, and the first checkpoint ≤ GOAL_N where every seed has a
    model and the mean held-out AUC is ≥ :data:`GOAL_AUC`."""
    parts = []
    seeds = curves["seed"].nunique()
    for order in ORDERS:
        g = curves[(curves["order"] == order) & (curves["n_verdicts"] <= GOAL_N)]
        by = g.groupby("n_verdicts")["auc_holdout"]
        ok = by.mean()[(by.count() == seeds) & (by.mean() >= GOAL_AUC)]
        at = g[g["n_verdicts"] == g["n_verdicts"].max()]["auc_holdout"]
        n_at = int(g["n_verdicts"].max())
        now = (f"no model at {n_at} verdicts in {seeds - at.count()}/{seeds} seeds" if at.count() < seeds else
               f"{at.mean():.3f} at {n_at} (min {at.min():.3f})")
        parts.append(f"{order}: {now} → " + (f"met from {int(ok.index.min())} verdicts" if len(ok) else "NOT met"))
    return "; ".join(parts)


def to_markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--seeds", type=int, default=SEEDS)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    head = (f"{date.today().isoformat()}; machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
            f"cores, load average {os.getloadavg()[0]:.2f} at start; {args.seeds} seeds (mean, min–max); held-out "
            f"= {HOLDOUT:.0%} of the queries per seed")
    print(head, flush=True)
    md = ["# The review queue's learning curve", "", f"`python benchmarks/bench_learning_curve.py` — {head}.", ""]
    for name in args.sets:
        loaded = load_set(name)
        if loaded is None:
            md += [f"## {name}", "", "skipped: data set not found", ""]
            continue
        t, y = loaded
        n_fn = int(np.nansum(y))
        balance = (f"{name}: {len(t)} items, {t['query_id'].nunique()} queries, {n_fn} false negatives "
                   f"({n_fn / len(t):.1%}); fn_score AUC on all items {roc_auc(y, t['fn_score'].to_numpy()):.3f}")
        print("\n" + balance, flush=True)
        top = ceiling(t, y, args.seeds)
        print(top, flush=True)
        curves = run_set(t, y, args.seeds)
        table = summarise(curves, args.seeds)
        goal = goal_line(curves)
        print(table.to_string(index=False), flush=True)
        print("goal (held-out AUC ≥ 0.90 after ≤ 100 verdicts): " + goal, flush=True)
        cold = cold_start_table(t, y, args.seeds)
        print("cold starts (uncertainty order; mean held-out AUC, false negatives judged):")
        print(cold.to_string(index=False), flush=True)
        md += [f"## {name}", "", balance + "; " + top + ".", "", to_markdown(table), "",
               f"Goal (held-out AUC ≥ {GOAL_AUC} after ≤ {GOAL_N} verdicts): {goal}.", "",
               "Cold starts (uncertainty order; mean held-out AUC, mean false negatives judged; [k/n]: seeds with a "
               "model):", "", to_markdown(cold), ""]
    tail = f"load average {os.getloadavg()[0]:.2f} at the end; {time.perf_counter() - t0:.0f} s"
    print(tail)
    md.append(tail + ".")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
