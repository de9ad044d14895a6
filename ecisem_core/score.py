"""Score negative sources: ``prepare`` (slow: embeddings, similarities, ρ, flags) then ``score_prepared``
(fast: weights → ECI_sem, contributions, classic ECI, uncertainty). ``score_sources`` does both.

A slider in the dashboard only calls :func:`score_prepared`; the per-triplet terms it needs are cached in the
:class:`Prepared` object (residuals per sample, ρ per tokenizer/IDF setting, and the word-token matrix of the unique
texts, built once and read by both ρ and the false-negative features).
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype

from ecisem_core.config import ScoreConfig
from ecisem_core.io.corpus import read_corpus
from ecisem_core.embed.texts import Embedded, Progress, embed_triplets
from ecisem_core.embed.encoders import Encoder, get_encoder
from ecisem_core.errors import InputError
from ecisem_core.hashing import TEXT_COLUMNS, content_key, content_key_of_texts
from ecisem_core.metric.lexical import residuality_indexed, token_matrix, word_tokenize
from ecisem_core.metric.classic import ClassicEci, classic_eci_from_sims
from ecisem_core.metric.eci_sem import EciSem, eci_sem
from ecisem_core.metric.logdet import row_floors
from ecisem_core.metric.shapley import PLAYERS, eci_sem_contributions
from ecisem_core.curation.features import check_present
from ecisem_core.curation.negatives import flag_triplets
from ecisem_core.metric.tokens import TokenMatrix
from ecisem_core.metric.terms import (
    fn_discount, residual_directions, semantic_locality, similarities, target_consistency, weights,
)
from ecisem_core.metric.parallel import Ticker, map_sources
from ecisem_core.metric.uncertainty import (
    SourceSample, bootstrap_scores, centre, intervals, pairwise_prob, rank_stability, ranks_desc, top_sources,
)
from ecisem_core.hashing import short_ids

SOURCE_COLUMNS = ["source", "n", "eci_sem", "eci_sem_per_dim", "ci_low", "ci_high", "info", "diversity",
                  "phi_c", "phi_h", "phi_rho", "phi_div", "eci_v1", "fn_rate"]
"""Columns of ``sources.csv`` (README, "Command line"), in order; more follow them."""
SOURCE_EXTRA_COLUMNS = ["rank", "junk_rate", "k", "signal", "margin", "n_sampled", "stability", "eci_sem_no_fn",
                        "fn_share", "rank_no_fn"]
"""``eci_sem_no_fn``: ECI_sem with the flagged false negatives of the sample left out (same settings);
``fn_share`` = 1 − eci_sem_no_fn / eci_sem, the share of the score that comes from flagged triplets;
``rank_no_fn``: the ranking by eci_sem_no_fn. All three are NaN when ``contributions=False`` (the dashboard's instant
path), like the other columns that path does not compute."""
TRIPLET_COLUMNS = ["query_id", "negative_id", "source", "s_qp", "s_qn", "s_pn", "c", "h", "rho", "w",
                   "fn_score", "fn_reasons"]
"""Columns of ``triplets.parquet`` (README, "Command line"), in order; more follow them."""
TRIPLET_EXTRA_COLUMNS = ["fn_flag", "junk_flag", "fn_label", "in_sample", "query", "positive", "negative"]
REQUIRED = ("query", "positive", "negative", "source")


@dataclass
class Prepared:
    """Everything that does not depend on the weights, computed once per (data, encoder)."""

    triplets: pd.DataFrame
    embedded: Embedded
    encoder: Encoder
    s_qp: np.ndarray
    s_qn: np.ndarray
    s_pn: np.ndarray
    source_names: list[str]
    source_codes: np.ndarray
    query_codes: np.ndarray
    flags: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    tokens: TokenMatrix | None = field(default=None, repr=False)
    """Word-token matrix of ``embedded.texts`` (rows ``embedded.qi/pi/ni``): the flags' features read it, and so does
    ρ with the word tokenizer (any IDF corpus)."""
    _rho: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict, repr=False)
    _samples: dict[tuple[int, int], dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict,
                                                                                      repr=False)
    _floors: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _members: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _classic: dict[int, ClassicEci] = field(default_factory=dict, repr=False)

    def members(self, code: int) -> np.ndarray:
        """Row indices of source ``code``, ascending (one stable sort for all sources, memoised)."""
        if self._members is None:
            by_code = np.argsort(self.source_codes, kind="stable")
            self._members = by_code, np.searchsorted(self.source_codes[by_code],
                                                     np.arange(len(self.source_names) + 1))
        by_code, bounds = self._members
        return by_code[bounds[code]:bounds[code + 1]]

    def classic(self, code: int) -> ClassicEci:
        """Classic ECI of source ``code`` over all its rows (similarities only, no weights: memoised)."""
        if code not in self._classic:
            m = self.members(code)
            self._classic[code] = classic_eci_from_sims(self.s_qp[m], self.s_qn[m], self.query_codes[m])
        return self._classic[code]

    @property
    def dim(self) -> int:
        return self.embedded.dim

    @property
    def delta(self) -> np.ndarray:
        return self.s_qp - self.s_qn

    def rho(self, config: ScoreConfig) -> np.ndarray:
        """ρ for the config's tokenizer and IDF corpus (memoised)."""
        key = (config.tokenizer, config.idf_corpus)
        if key not in self._rho:
            t0 = time.perf_counter()
            tok = word_tokenize if config.tokenizer == "word" else self.encoder.tokenize
            corpus = read_corpus(config.idf_corpus) if config.idf_corpus else None
            e = self.embedded
            shared = self.tokens if self.tokens is not None and self.tokens.tokenize is tok else None
            self._rho[key] = residuality_indexed(e.texts, e.qi, e.pi, e.ni, tok, corpus, shared)
            self.timings["lexical"] = time.perf_counter() - t0
        return self._rho[key]

    def sample(self, config: ScoreConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per source: (row indices of its sample, residual directions r̂ of those rows), memoised by (N, seed).

        The sample is the N rows with the smallest seeded content hash, so it does not depend on row order.
        """
        key = (config.sample_size, config.seed)
        if key not in self._samples:
            t0 = time.perf_counter()
            keys = self._content_keys(config.seed)
            chosen = {}
            for code, name in enumerate(self.source_names):
                rows = np.flatnonzero(self.source_codes == code)
                if rows.size > config.sample_size:
                    salt = np.uint64(zlib.crc32(name.encode("utf-8")))
                    rows = np.sort(rows[np.argsort(keys[rows] ^ salt, kind="stable")[: config.sample_size]])
                chosen[name] = rows
            self._samples[key] = self._with_residuals(chosen)
            self.timings["residuals"] = time.perf_counter() - t0
        return self._samples[key]

    def _content_keys(self, seed: int) -> np.ndarray:
        """:func:`~ecisem_core.hashing.content_key` of every triplet; from the embedded unique texts (each hashed once,
        the same keys) when the three text columns hold only ``str``, as loaded tables do."""
        t, e = self.triplets, self.embedded
        if all(is_string_dtype(t[c]) and not t[c].isna().any() for c in TEXT_COLUMNS):
            return content_key_of_texts(e.texts, (e.qi, e.pi, e.ni), seed)
        return content_key(t, seed)

    def sample_rows(self, config: ScoreConfig) -> dict[str, np.ndarray]:
        """Per source: the row indices of its sample for ``config`` (:meth:`sample`)."""
        return {name: rows for name, (rows, _) in self.sample(config).items()}

    def _with_residuals(self, chosen: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        e = self.embedded
        return {name: (rows, residual_directions(e.matrix[e.qi[rows]], e.matrix[e.pi[rows]], e.matrix[e.ni[rows]]))
                for name, rows in chosen.items()}

    def remember(self, config: ScoreConfig, rho: np.ndarray, sample_rows: dict[str, np.ndarray]) -> None:
        """Take ρ and the sample's rows for ``config`` as :meth:`rho` and :meth:`sample` computed them before (the
        prepared-term cache, :mod:`ecisem_core.prepared_cache`, keeps them): the residual directions are taken
        again from the embeddings, the rows' content hashes and the tokenising are not."""
        if set(sample_rows) != set(self.source_names) or len(rho) != len(self.triplets):
            raise ValueError("the remembered ρ and sample do not belong to these triplets")
        self._rho[(config.tokenizer, config.idf_corpus)] = np.asarray(rho)
        self._floors.pop((config.sample_size, config.seed), None)  # they belong to the sample replaced here
        self._samples[(config.sample_size, config.seed)] = self._with_residuals(
            {name: np.asarray(sample_rows[name], dtype=np.int64) for name in self.source_names})

    def floors(self, config: ScoreConfig) -> dict[str, np.ndarray]:
        """Per source: each sampled row's smallest non-zero |r̂_ij| (:func:`~ecisem_core.metric.logdet.row_floors`),
        memoised with the sample. With it a score's Gram matrix skips its flush pass, the same values: a slider's
        instant scores at 100k triplets took 68 ms of one core with the pass, 57 ms without."""
        key = (config.sample_size, config.seed)
        if key not in self._floors:
            self._floors[key] = {name: row_floors(r) for name, (_, r) in self.sample(config).items()}
        return self._floors[key]


@dataclass
class ScoreResult:
    """Per-source table (``sources``), per-triplet table (``triplets``) and P(row > column) (``pairwise``)."""

    sources: pd.DataFrame
    triplet_table: pd.DataFrame | Callable[[], pd.DataFrame] = field(repr=False)
    pairwise: pd.DataFrame
    config: ScoreConfig
    dim: int
    encoder_id: str
    timings: dict[str, float]

    @property
    def triplets(self) -> pd.DataFrame:
        """One row per triplet with its terms, weight, flags and texts. :func:`score_prepared` passes a function
        that builds it, called here on first use: a slider's leaderboard never reads it, and building it (about
        100k rows × 20 columns at the benchmark's size) was a sixth of the instant path."""
        if callable(self.triplet_table):
            self.triplet_table = self.triplet_table()
        return self.triplet_table


def _check_table(triplets: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in triplets.columns]
    if missing:
        raise InputError(f"triplet table lacks column(s) {missing}; has {list(triplets.columns)}")
    if len(triplets) == 0:
        raise InputError("no triplets to score")
    check_present(triplets, REQUIRED)


def with_ids(triplets: pd.DataFrame) -> pd.DataFrame:
    """The table :func:`prepare` works on: a fresh 0..n−1 index, ``query_id``/``negative_id`` made from the texts when
    missing, ids and source as ``str``."""
    t = triplets.reset_index(drop=True).copy()
    if "query_id" not in t.columns:
        t["query_id"] = short_ids("q", t["query"])
    if "negative_id" not in t.columns:
        t["negative_id"] = short_ids("n", t["negative"])
    for col in ("query_id", "negative_id", "source"):
        t[col] = t[col].astype(str)
    return t


def prepare(triplets: pd.DataFrame, encoder: Encoder | str | None = None, config: ScoreConfig | None = None, *,
            cache_dir: str | Path | None = None, use_cache: bool = True, progress: Progress | None = None,
            show_progress: bool = False, fn_encoder: Encoder | str | None = None) -> Prepared:
    """Embed (cached), compute s_qp, s_qn, s_pn for every triplet, FN flags, and ρ/residuals for ``config``.

    ``fn_encoder``: the encoder that judges false negatives (default: the target encoder). A weak target — a model
    training must still turn into a retriever — is a poor judge of whether a negative answers its query: on the
    validity study the 1-layer start flagged 37–96% of every source (README), and penalising those flags lowered
    agreement with training, while the same penalty with flags from the trained all-MiniLM-L6-v2 raised it."""
    config = config or ScoreConfig()
    _check_table(triplets)
    enc = encoder if encoder is not None and not isinstance(encoder, str) else get_encoder(encoder)
    t = with_ids(triplets)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    emb = embed_triplets(t, enc, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                         show_progress=show_progress)
    timings["embed_total"] = time.perf_counter() - t0
    timings["encoder_forward"] = emb.encode_seconds
    t0 = time.perf_counter()
    s_qp, s_qn, s_pn = similarities(emb.matrix, emb.qi, emb.pi, emb.ni)
    timings["similarities"] = time.perf_counter() - t0
    names = sorted(t["source"].unique())
    codes = pd.Categorical(t["source"], categories=names).codes.astype(np.int64)
    qcodes = pd.Categorical(t["query_id"], categories=sorted(t["query_id"].unique())).codes.astype(np.int64)
    t0 = time.perf_counter()
    tokens = token_matrix(emb.texts, emb.qi, emb.pi, emb.ni)  # every unique text tokenised once: flags and ρ
    timings["tokens"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    judge = (s_qp, s_qn, s_pn)
    if fn_encoder is not None:
        fenc = fn_encoder if not isinstance(fn_encoder, str) else get_encoder(fn_encoder)
        femb = embed_triplets(t, fenc, cache_dir=cache_dir, use_cache=use_cache, show_progress=show_progress)
        judge = similarities(femb.matrix, femb.qi, femb.pi, femb.ni)
        timings["encoder_forward"] += femb.encode_seconds
    flags = flag_triplets(t.assign(s_qp=judge[0], s_qn=judge[1], s_pn=judge[2]), tokens=tokens)
    timings["flags"] = time.perf_counter() - t0
    prep = Prepared(t, emb, enc, s_qp, s_qn, s_pn, names, codes, qcodes, flags, timings, tokens)
    prep.rho(config)
    prep.sample(config)
    return prep


def _terms(prep: Prepared, config: ScoreConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                         np.ndarray | None]:
    """Per triplet: c, h, ρ, the weight w (times the FN discount when φ > 0) and that discount (None at φ = 0)."""
    delta = prep.delta
    rho = prep.rho(config)
    c = target_consistency(delta, config.tau)
    h = semantic_locality(delta, config.tau)
    w = weights(c, h, rho, config.alpha, config.beta, config.gamma)
    penalty = float(config.fn_penalty)
    discount = fn_discount(prep.flags["fn_score"].to_numpy(), penalty) if penalty else None
    if discount is not None:
        w = w * discount
    return c, h, rho, w, discount


def eci_sem_without(prep: Prepared, config: ScoreConfig, drop: np.ndarray,
                    sources: list[str] | None = None) -> dict[str, float]:
    """The false-negative what-if for any set of triplets: each source's ECI_sem on its sample with the rows where
    ``drop`` is true (a bool per row of ``prep.triplets``, e.g. the pairs annotators judged false negatives) left
    out — ``eci_sem(r[keep], w[keep], κ)`` on the same sample, weights and κ as :func:`score_prepared`; 0 when
    nothing is left. (``score_prepared``'s ``eci_sem_no_fn`` is this with ``drop`` = the flagged triplets.)"""
    drop = np.asarray(drop, dtype=bool)
    if drop.shape != (len(prep.triplets),):
        raise InputError(f"drop must hold one bool per triplet ({len(prep.triplets)}), got shape {drop.shape}")
    w = _terms(prep, config)[3]
    kappa = config.kappa_for(prep.dim)
    samples = prep.sample(config)
    out = {}
    for name in (s for s in prep.source_names if sources is None or s in sources):
        idx, r = samples[name]
        keep = ~drop[idx]
        out[name] = eci_sem(r[keep], w[idx][keep], kappa).score if keep.any() else 0.0
    return out


def score_prepared(prep: Prepared, config: ScoreConfig | None = None, *, uncertainty: bool = True,
                   contributions: bool = True, sources: list[str] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> ScoreResult:
    """Weights → per-source ECI_sem, classic ECI, Shapley contributions (when ``contributions``; 8 log-dets per
    source instead of 1) and bootstrap CI, P(A > B), rank stability (when ``uncertainty``). What is not computed
    is NaN, never a stale value. ``sources`` restricts the table to some sources. ``progress(done, total)`` is
    called from the worker threads as the uncertainty step's log-dets finish (B + trials per source in all)."""
    config = config or ScoreConfig()
    t0 = time.perf_counter()
    names = [s for s in prep.source_names if sources is None or s in sources]
    delta = prep.delta
    c, h, rho, w, discount = _terms(prep, config)
    kappa = config.kappa_for(prep.dim)
    samples, floors = prep.sample(config), prep.floors(config)
    rows, in_sample = [], np.zeros(len(delta), dtype=bool)
    unc_samples, unc_w = [], []
    fn_flag = prep.flags["fn_flag"].to_numpy(bool)
    junk = prep.flags["junk_flag"].to_numpy(bool)
    def per_source(j: int) -> tuple[EciSem, dict[str, float]]:
        idx, r = samples[names[j]]
        if contributions:
            return eci_sem_contributions(r, c[idx], h[idx], rho[idx], config.alpha, config.beta, config.gamma,
                                         kappa, None if discount is None else discount[idx])
        return eci_sem(r, w[idx], kappa, floors[names[j]]), dict.fromkeys(PLAYERS, np.nan)

    def without_flagged(j: int) -> float:
        idx, r = samples[names[j]]
        keep = ~fn_flag[idx]
        return eci_sem(r[keep], w[idx][keep], kappa, floors[names[j]][keep]).score if keep.any() else 0.0

    # one more log-det per source: computed with the contributions (the full path), not on the slider's instant path
    clean = map_sources(without_flagged, len(names)) if contributions else [np.nan] * len(names)
    code_of = {n: i for i, n in enumerate(prep.source_names)}
    for name, (full, phi), no_fn in zip(names, map_sources(per_source, len(names)), clean):
        idx, r = samples[name]
        in_sample[idx] = True
        code = code_of[name]
        members = prep.members(code)
        ce = prep.classic(code)
        rows.append({
            "source": name, "n": int(members.size), "eci_sem": full.score, "eci_sem_per_dim": full.per_dim,
            "ci_low": np.nan, "ci_high": np.nan, "info": full.info, "diversity": full.diversity,
            "phi_c": phi["c"], "phi_h": phi["h"], "phi_rho": phi["rho"], "phi_div": phi["div"],
            "eci_v1": ce.eci, "fn_rate": float(fn_flag[members].mean()), "junk_rate": float(junk[members].mean()),
            "k": ce.k, "signal": ce.signal, "margin": ce.margin, "n_sampled": int(idx.size), "stability": np.nan,
            "eci_sem_no_fn": float(no_fn),
            "fn_share": 1.0 - float(no_fn) / full.score if full.score > 0 and np.isfinite(no_fn) else np.nan,
        })
        unc_samples.append(SourceSample(name, r, delta[idx], rho[idx], prep.query_codes[idx],
                                        None if discount is None else discount[idx]))
        unc_w.append(w[idx])
    table = pd.DataFrame(rows)
    shown = [names[i] for i in top_sources(table["eci_sem"].to_numpy() if len(table) else None, len(names))]
    pairwise = pd.DataFrame(np.nan, index=shown, columns=shown)
    timings = dict(prep.timings)
    timings["score"] = time.perf_counter() - t0
    if uncertainty and names:
        t1 = time.perf_counter()
        ticker = Ticker((config.bootstrap + config.stability_trials) * len(names), progress)
        boot = centre(bootstrap_scores(unc_samples, unc_w, kappa, config.bootstrap, config.seed, ticker),
                      table["eci_sem"].to_numpy())
        lo, hi = intervals(boot)
        table["ci_low"], table["ci_high"] = lo, hi
        pairwise = pairwise_prob(boot, names, table["eci_sem"].to_numpy())
        table["stability"] = rank_stability(unc_samples, config.tau, config.alpha, config.beta, config.gamma,
                                            kappa, table["eci_sem"].to_numpy(), config.stability_trials,
                                            config.seed, ticker)
        timings["uncertainty"] = time.perf_counter() - t1
    table["rank"] = ranks_desc(table["eci_sem"].to_numpy()) if len(table) else []
    no_fn = table["eci_sem_no_fn"].to_numpy() if len(table) else np.zeros(0)
    table["rank_no_fn"] = ranks_desc(no_fn) if np.isfinite(no_fn).all() else np.nan
    table = table.sort_values("rank").reset_index(drop=True)[SOURCE_COLUMNS + SOURCE_EXTRA_COLUMNS]
    def per_triplet() -> pd.DataFrame:
        keep = np.isin(prep.source_codes, [code_of[n] for n in names])
        trip = prep.triplets
        flags = prep.flags.set_axis(trip.index)  # the text columns pass as they are: no round trip through objects
        out = pd.DataFrame({
            "query_id": trip["query_id"], "negative_id": trip["negative_id"], "source": trip["source"],
            "s_qp": prep.s_qp, "s_qn": prep.s_qn, "s_pn": prep.s_pn, "c": c, "h": h, "rho": rho, "w": w,
            "fn_score": flags["fn_score"], "fn_reasons": flags["fn_reasons"],
            "fn_flag": fn_flag, "junk_flag": junk,
            "fn_label": trip["fn_label"] if "fn_label" in trip.columns else np.nan,
            "in_sample": in_sample,
            "query": trip["query"], "positive": trip["positive"], "negative": trip["negative"],
        })
        return out.reset_index(drop=True) if keep.all() else out[keep].reset_index(drop=True)

    return ScoreResult(table, per_triplet, pairwise, config, prep.dim, prep.encoder.model_id, timings)


def score_sources(triplets: pd.DataFrame, encoder: Encoder | str | None = None, config: ScoreConfig | None = None,
                  **kw) -> ScoreResult:
    """Score every source of a triplet table: :func:`prepare` then :func:`score_prepared`.

    Example:
        >>> from ecisem_core import load_triplets, score_sources, ScoreConfig       # doctest: +SKIP
        >>> result = score_sources(load_triplets(["bm25.jsonl", "llm.jsonl"]))       # doctest: +SKIP
        >>> result.sources[["source", "eci_sem", "ci_low", "ci_high", "eci_v1"]]     # doctest: +SKIP
    """
    config = config or ScoreConfig()
    uncertainty = kw.pop("uncertainty", True)
    return score_prepared(prepare(triplets, encoder, config, **kw), config, uncertainty=uncertainty)

