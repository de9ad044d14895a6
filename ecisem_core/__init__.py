"""ecisem_core: score hard-negative sources with ECI_sem and classic ECI (see docs/ARCHITECTURE.md)."""
from __future__ import annotations

from .config import ScoreConfig
from .errors import InputError

__all__ = ["ScoreConfig", "InputError"]
__version__ = "0.1.0"
