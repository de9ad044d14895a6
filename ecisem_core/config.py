"""Settings of the metric (docs/METRIC.md §4): the registry :data:`SETTINGS`, one :class:`Setting` per setting.

Each entry says everything about one setting, once: its name (the :class:`ScoreConfig` field and the CLI dest),
type, default, validation, CLI flag and help, share-link parameter, sidebar widget and calibration grid. Every
consumer loops over the registry instead of naming settings by hand: :class:`ScoreConfig` (fields, defaults,
validation), the CLI flags (``ecisem_core.commands.options``), the dashboard's sidebar, share link and state
(``ecisem_core.ui``) and the calibration grid (``ecisem_core.downstream.calibrate``). Consumers read it through
:func:`registry` when called, so a test can swap :data:`SETTINGS` (``tests/test_config_registry.py``).

A :class:`ScoreConfig` travels unchanged through the library, the CLI (``--tau`` …, ``--config FILE``) and the
dashboard (sidebar, share link). ``to_dict``/``from_dict``/``save``/``load`` round-trip it as JSON, which is also
the format of the calibrated settings written by ``ecisem validate``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
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
FN_PENALTY: float = 0.0
"""Exponent φ of the false-negative discount (1 − fn_score)^φ of each weight (0: off, the published construction)."""
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
class Setting:
    """One metric setting, declared once. Only ``name``, ``type``, ``default`` and ``help`` are required; a
    setting without ``flag`` is not on the command line, without ``url`` not in share links, without ``label`` not
    in the sidebar, without ``grid`` not calibrated.

    Example (a setting on the command line and in the config file only):

        Setting("bootstrap", int, 200, "bootstrap resamples B (default {default})", flag="--bootstrap", minimum=0)
    """

    name: str
    """The :class:`ScoreConfig` field, the CLI dest and the key in JSON settings files."""
    type: type
    """``float``, ``int`` or ``str``: ints refuse non-integers and bools, floats refuse non-numbers."""
    default: Any
    help: str
    """CLI help; ``{default}`` is replaced by the default."""
    symbol: str | None = None
    """Short name in captions and notes (τ, α, N …; the name when ``None``)."""
    flag: str | None = None
    """CLI flag, e.g. ``"--sample-size"``."""
    metavar: str | None = None
    """CLI metavar (argparse's own when ``None``)."""
    url: str | None = None
    """Share-link query parameter (short and stable: links in the wild depend on it)."""
    label: str | None = None
    """Sidebar widget label: a slider for a float, a number input for an int, a step slider for a per-dimension
    setting."""
    widget_help: str | None = None
    """Tooltip of the sidebar widget; ``{default}`` is replaced by the default."""
    widget_format: str | None = None
    """printf-style number format of the slider (Streamlit's own when ``None``)."""
    minimum: float | None = None
    """Smallest valid value (validated by :class:`ScoreConfig`)."""
    exclusive: bool = False
    """The value must be strictly above ``minimum``."""
    choices: tuple[Any, ...] | None = None
    """The only valid values (CLI ``choices`` too)."""
    ui_range: tuple[float, float] | None = None
    """Bounds of the sidebar widget; a share-link value outside them is clamped into them."""
    step: float | None = None
    """Step of the sidebar widget."""
    grid: tuple[float, ...] | None = None
    """Values tried by ``ecisem validate``'s calibration (per dimension for a per-dimension setting)."""
    optional: bool = False
    """``None`` is allowed: the library's own default (κ = d/ε²; the IDF of the loaded passages)."""
    per_dim: bool = False
    """The dashboard, share link and calibration grid express the value per embedding dimension (κ/d); the
    :class:`ScoreConfig` holds the absolute value."""
    options: tuple[float, ...] | None = None
    """Steps of the per-dimension slider (a share link or calibrated value is moved to the nearest one)."""
    per_dim_default: float | None = None
    """The per-dimension value that ``None`` stands for (κ/d = 1/ε² = 2)."""
    log_scale: bool = False
    """Compared on a log scale (calibration's distance to the starting settings)."""

    @property
    def short(self) -> str:
        """The symbol, else the name."""
        return self.symbol or self.name

    @property
    def kind(self) -> str:
        """``"float"``, ``"int"`` or ``"str"`` (how the CLI, the share link and the sidebar treat the value)."""
        return self.type.__name__

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not valid for this setting (``None`` when it is)."""
        if value is None and self.optional:
            return None
        if self.type is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            return f"{self.name} must be a whole number (got {value!r})"
        if self.type is float and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            return f"{self.name} must be a number (got {value!r})"
        if self.minimum is not None:
            ok = math.isfinite(value) and (value > self.minimum if self.exclusive else value >= self.minimum)
            if not ok:
                return f"{self.name} must be {'>' if self.exclusive else '>='} {self.minimum:g} (got {value})"
        if self.choices is not None and value not in self.choices:
            names = [repr(c) for c in self.choices]
            allowed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
            return f"{self.name} must be {allowed} (got {value!r})"
        return None


EXPONENT_MIN: float = -4.0
"""Lowest exponent α, β, γ: a negative exponent turns its term against a source (docs/METRIC.md §2.1; the term is
floored at ``metric.terms.NEGATIVE_EXPONENT_FLOOR`` first), which the validity study's calibration found the
adapt regime asks for; below −4 a floored term's weight would dwarf every other triplet's."""
EXPONENT_GRID: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0)
"""Calibration grid of α, β, γ (``ecisem validate --calibrate``): either sign, off, and a stronger positive."""


SETTINGS: tuple[Setting, ...] = (
    Setting("tau", float, TAU, "temperature τ (default {default})", symbol="τ",
            flag="--tau", url="tau", label="τ  temperature", widget_format="%.3f",
            widget_help="Temperature of c = σ(Δ/τ) and h = exp(−max(0, Δ)/τ), Δ = s_qp − s_qn.",
            minimum=0, exclusive=True, ui_range=(0.005, 0.5), step=0.005, grid=(0.02, 0.05, 0.1), log_scale=True),
    Setting("alpha", float, ALPHA, "exponent of target consistency (default {default})", symbol="α",
            flag="--alpha", url="a", label="α  target consistency",
            widget_help="Exponent of c in w = c^α·h^β·ρ^γ. c near 0: the encoder prefers the negative (likely "
                        "false negative). 0 switches the term off; below 0 the term counts against a source.",
            minimum=EXPONENT_MIN, ui_range=(-2.0, 3.0), step=0.1, grid=EXPONENT_GRID),
    Setting("beta", float, BETA, "exponent of semantic locality (default {default})", symbol="β",
            flag="--beta", url="b", label="β  semantic locality",
            widget_help="Exponent of h: rewards negatives as close to the query as the positive (hard ones); "
                        "below 0 it rewards negatives far from the query instead.",
            minimum=EXPONENT_MIN, ui_range=(-2.0, 3.0), step=0.1, grid=EXPONENT_GRID),
    Setting("gamma", float, GAMMA, "exponent of lexical residuality (default {default})", symbol="γ",
            flag="--gamma", url="g", label="γ  lexical residuality",
            widget_help="Exponent of ρ: the share of the negative's IDF mass not already in the query or positive; "
                        "below 0 it rewards lexical overlap instead.",
            minimum=EXPONENT_MIN, ui_range=(-2.0, 3.0), step=0.1, grid=EXPONENT_GRID),
    Setting("fn_penalty", float, FN_PENALTY, "false-negative penalty φ: each triplet's weight is multiplied by "
            "(1 − fn_score)^φ (default {default}: the published construction)", symbol="φ",
            flag="--fn-penalty", url="fn", label="φ  false-negative penalty",
            widget_help="Down-weights triplets whose negative likely answers the query: w·(1 − fn_score)^φ. "
                        "0 = the published construction.",
            minimum=0, ui_range=(0.0, 8.0), step=0.5),
    Setting("kappa", float, None, "diversity strength κ (default d/ε² = 2d)", symbol="κ",
            flag="--kappa", url="k", label="κ / d  diversity strength",
            widget_help="κ of (1/κ)·log det(I + κM), as a multiple of the dimension d. Default 2 (ε² = 0.5). "
                        "Small κ: ECI_sem ≈ info and diversity stops mattering.",
            minimum=0, exclusive=True, optional=True, per_dim=True, per_dim_default=1.0 / EPS2,
            options=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0), grid=(0.5, 2.0, 8.0),
            log_scale=True),
    Setting("sample_size", int, SAMPLE_SIZE, "triplets per source N (default {default})", symbol="N",
            flag="--sample-size", url="n", label="N per source",
            widget_help="Triplets sampled per source for ECI_sem (default {default}).",
            minimum=1, ui_range=(50, 50_000), step=50),
    Setting("seed", int, SEED, "sampling/bootstrap seed (default {default})",
            flag="--seed", url="seed", label="Seed",
            widget_help="Seed of the sample, the bootstrap and the stability jitter.",
            minimum=0, ui_range=(0, 2**31 - 1), step=1),
    Setting("bootstrap", int, BOOTSTRAP, "bootstrap resamples B (default {default})", symbol="B",
            flag="--bootstrap", minimum=0),
    Setting("stability_trials", int, STABILITY_TRIALS, "perturbed settings tried for rank stability (default "
            "{default})", minimum=0),
    Setting("tokenizer", str, TOKENIZER, "tokenizer of lexical residuality (default {default})",
            flag="--tokenizer", choices=("word", "encoder")),
    Setting("idf_corpus", str, None, "IDF corpus: text file (one passage a line) or JSONL with 'text' (default: "
            "loaded passages)", flag="--idf-corpus", metavar="FILE", optional=True),
)
"""Every metric setting, in :class:`ScoreConfig` field order (which is also the order of ``to_dict``, the CLI's
``--help`` and the calibration grid). Adding an entry adds the field, its validation, its CLI flag and — when it
says so — its share-link parameter, sidebar widget and calibration axis."""


def registry() -> tuple[Setting, ...]:
    """The registry as it is now (consumers call this rather than binding :data:`SETTINGS` at import)."""
    return SETTINGS


def setting(name: str) -> Setting:
    """The registry entry called ``name`` (``KeyError`` when there is none)."""
    for s in registry():
        if s.name == name:
            return s
    raise KeyError(name)


class _ScoreConfigMethods:
    """Behaviour of :class:`ScoreConfig`; its fields come from the registry (:func:`config_class`)."""

    _settings: tuple[Setting, ...] = ()

    def __post_init__(self) -> None:
        problems = [p for s in self._settings if (p := s.check(getattr(self, s.name))) is not None]
        if problems:
            raise InputError("; ".join(problems))

    def kappa_for(self, dim: int) -> float:
        """κ for embedding dimension d: the set value, else d/ε²."""
        return float(self.kappa) if self.kappa is not None else dim / EPS2

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Any:
        """Build from a dict, refusing unknown keys (a typo must not silently fall back to a default)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown setting(s) {unknown}; known: {sorted(names)}", source)
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(str(exc), source) from None
        except InputError as exc:
            if source is None or exc.path is not None:
                raise
            raise InputError(exc.problem, source) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read settings saved by :meth:`save` or by ``ecisem validate`` (a ``"config"`` key is accepted)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read settings file ({exc.strerror})", path) from None
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
        except UnicodeDecodeError:
            raise InputError("not UTF-8 text (a settings file is JSON)", path) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", path) from None
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = data["config"]
        if not isinstance(data, dict):
            raise InputError("settings file must hold a JSON object", path)
        return cls.from_dict(data, str(path))


_DOC = """All settings of ECI_sem: one field per :data:`SETTINGS` entry (validated), then ``notes`` (free-form,
    not compared). ``kappa=None`` means the default κ = d/ε² (= 2d for ε² = 0.5).

    Example:
        >>> ScoreConfig(alpha=0.0).alpha   # switch target consistency off
        0.0
    """


def _build(settings: tuple[Setting, ...]) -> type:
    """A frozen dataclass with one field per setting (its default), then ``notes``; validated on creation."""
    fields = [(s.name, s.type | None if s.optional else s.type, field(default=s.default)) for s in settings]
    fields.append(("notes", dict[str, Any], field(default_factory=dict, compare=False, hash=False)))
    return dataclasses.make_dataclass("ScoreConfig", fields, bases=(_ScoreConfigMethods,), frozen=True,
                                      namespace={"__module__": __name__, "_settings": settings, "__doc__": _DOC})

ScoreConfig = _build(SETTINGS)
"""The settings class of :data:`SETTINGS` (a frozen dataclass: ``ScoreConfig(tau=0.1, alpha=0.0)``)."""

_classes: dict[tuple[Setting, ...], type] = {SETTINGS: ScoreConfig}


def config_class() -> type:
    """The settings class of the registry as it is now: :class:`ScoreConfig`, unless a test swapped
    :data:`SETTINGS` (then a class built for it, with the same methods). Code that makes a config from registry
    values (the CLI, the dashboard, the calibration grid) builds it with this."""
    settings = tuple(registry())
    if settings not in _classes:
        _classes[settings] = _build(settings)
    return _classes[settings]
