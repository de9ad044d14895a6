"""What explains a score, cached per settings: the sampled triplets of a source with their terms and leave-one-out
contributions, the IDF used to highlight shared words, and the false-negative what-if without the triplets the
annotators judged false negatives."""
from __future__ import annotations

import pandas as pd

from ecisem_core.curation.fn_model import labels_from_verdicts
from ecisem_core.curation.highlight import idf_table
from ecisem_core.curation.review import verdicts_fingerprint
from ecisem_core.metric.explain import triplet_contributions, weight_cuts
from ecisem_core.score import Prepared, ScoreResult, eci_sem_without
from ecisem_core.ui.data import Dataset, ScoreRequest, caches, prepared_key, scores_key


def judged_what_if(ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared, verdicts: pd.DataFrame
                   ) -> dict[str, float] | None:
    """Each source's ECI_sem without the triplets the annotators judged false negatives (consensus over every
    batch, matched by query_id + negative_id; :func:`ecisem_core.score.eci_sem_without`), or None when no triplet
    of this dataset is judged one (cached per settings and verdict set)."""
    if verdicts.empty:
        return None
    fingerprint = verdicts_fingerprint(verdicts)
    drop = caches()["explain"].get_or_compute((*prepared_key(ds, spec), "judged rows", fingerprint),
                                              lambda: labels_from_verdicts(prep.triplets, verdicts) == 1.0)
    if not drop.any():
        return None
    key = (*scores_key(ds, spec, req), "judged", fingerprint)
    return caches()["explain"].get_or_compute(key, lambda: eci_sem_without(prep, req.config, drop,
                                                                           req.source_list))


def sample_terms(ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared, result: ScoreResult,
                 source: str) -> pd.DataFrame:
    """The sampled triplets of one source with their terms, leave-one-out contribution to ECI_sem and the term
    that cuts their weight most (cached per settings)."""
    key = (*scores_key(ds, spec, req), source)
    config = req.config

    def build() -> pd.DataFrame:
        rows, r = prep.sample(config)[source]
        t = result.triplets
        part = t[(t["source"] == source).to_numpy() & t["in_sample"].to_numpy()].reset_index(drop=True)
        if len(part) != len(rows):
            raise RuntimeError(f"sample of {source!r} does not line up with the scores")
        contrib = triplet_contributions(r, part["w"].to_numpy(), config.kappa_for(prep.dim))
        cuts = weight_cuts(part["c"].to_numpy(), part["h"].to_numpy(), part["rho"].to_numpy(),
                           config.alpha, config.beta, config.gamma)
        return pd.concat([part, cuts], axis=1).assign(contribution=contrib)

    return caches()["explain"].get_or_compute(key, build)


def idf(ds: Dataset) -> dict[str, float]:
    """token → idf over the dataset's unique passages (for highlighting)."""
    t = ds.table
    return caches()["idf"].get_or_compute(
        ds.key, lambda: idf_table(pd.concat([t["positive"], t["negative"]]).astype(str).unique()))
