"""Settings of the metric (ECI_SPEC §4), each a named, overridable default.

A :class:`ScoreConfig` travels unchanged through the library, the CLI (``--tau`` …, ``--config FILE``) and the
dashboard (sidebar, share link). ``to_dict``/``from_dict``/``save``/``load`` round-trip it as JSON, which is also
the format of the calibrated settings written by ``ecisem validate``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecisem_core.errors import InputError

TAU: float = 0.05
"""Temperature τ of target consistency c = σ(Δ/τ) and semantic locality h = exp(−max(0, Δ)/τ)."""
ALPHA: float = 1.0
"""Exponent α of target consistency c in the weight w = c^α · h^β · ρ^γ (0 switches the term off)."""
BETA: float = 1.0
"""Exponent β of semantic locality h in w."""
GAMMA: float = 1.0
"""Exponent γ of lexical residuality ρ in w."""
EPS2: float = 0.5
"""Distortion ε² of the coding rate; the default diversity strength is κ = d/ε² = 2d."""
SAMPLE_SIZE: int = 2000
"""N: triplets sampled per source for ECI_sem (all of them when the source is smaller)."""
SEED: int = 0
"""Seed of the per-source sample, the bootstrap and the rank-stability jitter."""
BOOTSTRAP: int = 200
"""B: bootstrap resamples over queries for the 95% interval and P(A > B)."""
STABILITY_TRIALS: int = 50
"""Perturbed settings tried for rank stability (exponents and τ jittered ±50%, log-uniform)."""
TOKENIZER: str = "word"
"""Tokenizer of lexical residuality: ``"word"`` (lower-cased words) or ``"encoder"`` (the encoder's own)."""
RESIDUAL_EPS: float = 1e-6
"""Residual norms below this give r̂ = 0."""


@dataclass(frozen=True)
class ScoreConfig:
    """All settings of ECI_sem. ``kappa=None`` means the default κ = d/ε² (= 2d for ε² = 0.5).

    Example:
        >>> ScoreConfig(alpha=0.0).alpha   # switch target consistency off
        0.0
    """

    tau: float = TAU
    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA
    kappa: float | None = None
    sample_size: int = SAMPLE_SIZE
    seed: int = SEED
    bootstrap: int = BOOTSTRAP
    stability_trials: int = STABILITY_TRIALS
    tokenizer: str = TOKENIZER
    idf_corpus: str | None = None
    notes: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.tau) and self.tau > 0):
            problems.append(f"tau must be > 0 (got {self.tau})")
        for name in ("alpha", "beta", "gamma"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                problems.append(f"{name} must be >= 0 (got {v})")
        if self.kappa is not None and not (math.isfinite(self.kappa) and self.kappa > 0):
            problems.append(f"kappa must be > 0 (got {self.kappa})")
        if self.sample_size < 1:
            problems.append(f"sample_size must be >= 1 (got {self.sample_size})")
        if self.bootstrap < 0:
            problems.append(f"bootstrap must be >= 0 (got {self.bootstrap})")
        if self.tokenizer not in ("word", "encoder"):
            problems.append(f"tokenizer must be 'word' or 'encoder' (got {self.tokenizer!r})")
        if problems:
            raise InputError("; ".join(problems))

    def kappa_for(self, dim: int) -> float:
        """κ for embedding dimension d: the set value, else d/ε²."""
        return float(self.kappa) if self.kappa is not None else dim / EPS2

    def replace(self, **changes: Any) -> "ScoreConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> "ScoreConfig":
        """Build from a dict, refusing unknown keys (a typo must not silently fall back to a default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown setting(s) {unknown}; known: {sorted(names)}", source)
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(str(exc), source) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "ScoreConfig":
        """Read settings saved by :meth:`save` or by ``ecisem validate`` (a ``"config"`` key is accepted)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read settings file ({exc.strerror})", path) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = data["config"]
        if not isinstance(data, dict):
            raise InputError("settings file must hold a JSON object", path)
        return cls.from_dict(data, str(path))
