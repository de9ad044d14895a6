"""Named presets: a ScoreConfig with the data it was fitted on and its measured agreement with training outcomes.

- ``paper`` — the published construction (docs/METRIC.md §2, arXiv 2603.20990 v3): every default, no
  false-negative penalty. It is never replaced silently: the CLI and the dashboard say which preset produced a
  ranking.
- the others are fitted by ``benchmarks/validity_study.py analyse`` on the study described in the README and
  written to ``ecisem_core/metric/preset_files/<name>.json``; each file records the data, the regime, the grid
  and the agreement measured out of sample (leave one source out, and fitted on the other regime).

A preset file is JSON: ``{"name", "title", "description", "fitted_on", "agreement", "config": {ScoreConfig}}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecisem_core.config import ScoreConfig
from ecisem_core.errors import InputError

PRESET_DIR = Path(__file__).resolve().parent / "preset_files"
"""Where the shipped presets live."""
PAPER = "paper"
"""Name of the published construction."""
FITTED_DIM = 384
"""Embedding dimension the shipped presets were fitted at (all-MiniLM-L6-v2, the validity study's encoder): a
preset's κ is that multiple of it, and is carried to another encoder as the same multiple of its d."""


@dataclass(frozen=True)
class Preset:
    """A named ScoreConfig and what is known about it."""

    name: str
    title: str
    description: str
    config: ScoreConfig
    fitted_on: dict[str, Any] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description,
                "fitted_on": self.fitted_on, "agreement": self.agreement, "config": self.config.to_dict()}


def paper() -> Preset:
    return Preset(PAPER, "Published construction",
                  "ECI_sem exactly as constructed from arXiv 2603.20990 v3 with every default (τ 0.05, α = β = γ = 1, "
                  "κ = 2d, no false-negative penalty). On the validity study it anti-correlates with training "
                  "outcomes (see the README); kept as the reference.", ScoreConfig())


def read_preset(path: str | Path) -> Preset:
    """A preset from its JSON file (clear errors naming the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read preset ({exc.strerror})", path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise InputError('a preset file needs an object with a "config" object', path)
    config = ScoreConfig.from_dict(data["config"], str(path))
    return Preset(str(data.get("name") or path.stem), str(data.get("title") or path.stem),
                  str(data.get("description") or ""), config, dict(data.get("fitted_on") or {}),
                  dict(data.get("agreement") or {}))


def write_preset(preset: Preset, folder: str | Path = PRESET_DIR) -> Path:
    path = Path(folder) / f"{preset.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(preset.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def presets(folder: str | Path = PRESET_DIR) -> dict[str, Preset]:
    """Every preset: ``paper`` first, then the shipped files in name order."""
    out = {PAPER: paper()}
    for path in sorted(Path(folder).glob("*.json")):
        p = read_preset(path)
        if p.name != PAPER:
            out[p.name] = p
    return out


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or an error listing the known ones."""
    known = presets()
    if name not in known:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(known)}")
    return known[name]


def preset_of(config: ScoreConfig) -> str | None:
    """The name of the preset whose settings equal ``config`` (None: custom settings)."""
    for name, p in presets().items():
        if p.config == config:
            return name
    return None
