"""Who is looking: a researcher (every page, the settings sidebar) or an annotator (the Annotate page alone, no
sidebar, no other annotator's verdicts).

An annotator link carries ``role=annotator`` (``…/annotate?batch=3&annotator=alice&role=annotator``); once a
session has opened one it stays an annotator session. A server started with ``ECISEM_ROLE=annotator`` is an
annotator server for everyone — the way to *lock* it: the link parameter hides the researcher's controls from an
annotator who follows the link, it does not stop someone who edits the URL on a researcher's server.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from ecisem_core.ui.state import K

ROLE_PARAM = "role"
"""Query parameter of an annotator link."""
ANNOTATOR = "annotator"
ROLE_ENV = "ECISEM_ROLE"
"""Environment variable: ``annotator`` makes the whole server an annotator server."""
SESSION_KEY = K.ANN_ROLE
"""Session-state key that keeps a session in annotator mode."""


def server_role(environ: Mapping[str, str] | None = None) -> str | None:
    """``"annotator"`` when the server is locked to annotators, else None."""
    value = (environ if environ is not None else os.environ).get(ROLE_ENV, "").strip().lower()
    return ANNOTATOR if value == ANNOTATOR else None


def is_annotator(params: Mapping[str, Any], session: MutableMapping[str, Any],
                 environ: Mapping[str, str] | None = None) -> bool:
    """Annotator mode for this run: the server is locked, the session already is, or the link asks for it (then
    the session keeps it)."""
    if server_role(environ) == ANNOTATOR or session.get(SESSION_KEY) == ANNOTATOR:
        return True
    asked = params.get(ROLE_PARAM)
    if isinstance(asked, (list, tuple)):
        asked = asked[-1] if asked else None
    if str(asked or "").strip().lower() == ANNOTATOR:
        session[SESSION_KEY] = ANNOTATOR
        return True
    return False
