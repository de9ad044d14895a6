"""Nothing is downloaded at run time: the Hugging Face libraries' offline switches, set unless already set."""
from __future__ import annotations

import os

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def go_offline() -> None:
    """Set each of :data:`OFFLINE` in the environment unless it is set already (a user's own choice stands)."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
