"""ecisem_core: score hard-negative sources with ECI_sem and classic ECI before training.

    >>> from ecisem_core import load_triplets, score_sources, ScoreConfig      # doctest: +SKIP
    >>> result = score_sources(load_triplets(["bm25.csv", "llm.jsonl"]), config=ScoreConfig(alpha=0.5))
    >>> result.sources        # one row per source: eci_sem, 95% CI, contributions, classic ECI, FN rate …
    >>> result.triplets       # one row per triplet: s_qp, s_qn, s_pn, c, h, rho, w, fn_score, fn_reasons …

See docs/ARCHITECTURE.md for the packages and docs/METRIC.md for the formulas (arXiv 2603.20990).
"""
from __future__ import annotations

from ecisem_core.config import ScoreConfig
from ecisem_core.embed.encoders import get_encoder
from ecisem_core.errors import InputError
from ecisem_core.downstream.hybrid import add_hybrids, make_hybrid
from ecisem_core.io.load import LoadReport, load_triplets, read_triplets
from ecisem_core.metric.classic import classic_eci
from ecisem_core.metric.eci_sem import eci_sem
from ecisem_core.curation.negatives import flag_triplets
from ecisem_core.score import Prepared, ScoreResult, prepare, score_prepared, score_sources

__all__ = [
    "ScoreConfig", "InputError", "get_encoder", "load_triplets", "read_triplets", "LoadReport", "score_sources",
    "prepare", "score_prepared", "Prepared", "ScoreResult", "classic_eci", "eci_sem", "flag_triplets",
    "make_hybrid", "add_hybrids",
]
__version__ = "0.1.0"
