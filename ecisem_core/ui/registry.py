"""The dashboard's pages: one registry, so a page file added later shows up without editing ``app.py``.

``available_pages(root)`` returns the :class:`PageSpec` of every registered page whose file exists, in registry
order, then any other ``views/*.py`` file (titled from its name, in an "Other" section). ``app.py`` turns them
into ``st.Page`` objects for ``st.navigation``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PageSpec:
    """One page: its file (relative to the project root), title, Material icon, URL path and section."""

    file: str
    title: str
    icon: str
    url_path: str
    section: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("views/leaderboard.py", "Leaderboard", ":material/leaderboard:", "leaderboard", "Explore"),
    PageSpec("views/why_rank.py", "Why this rank", ":material/compare_arrows:", "why", "Explore"),
    PageSpec("views/geometry.py", "Geometry", ":material/scatter_plot:", "geometry", "Explore"),
    PageSpec("views/explorer.py", "Explorer", ":material/travel_explore:", "explorer", "Explore"),
    PageSpec("views/compare.py", "Compare", ":material/compare:", "compare", "Explore"),
    PageSpec("views/false_negatives.py", "False negatives", ":material/flag:", "false-negatives", "Curate"),
    PageSpec("views/annotate.py", "Annotate", ":material/rate_review:", "annotate", "Curate"),
    PageSpec("views/validate.py", "Validate", ":material/model_training:", "validate", "Check"),
)
"""Known pages, in menu order; the first available one is the default page."""
OTHER_SECTION = "Other"
ANNOTATE = "annotate"
"""URL path of the Annotate page (the only page of an annotator session)."""


def page(url_path: str) -> PageSpec:
    """The registered page with this URL path."""
    return next(p for p in PAGES if p.url_path == url_path)


def available_pages(root: Path) -> list[PageSpec]:
    """Registered pages whose file exists under ``root``, then unregistered ``views/*.py`` files."""
    root = Path(root)
    found = [p for p in PAGES if (root / p.file).is_file()]
    known = {p.file for p in PAGES}
    for f in sorted((root / "views").glob("*.py")):
        rel = f"views/{f.name}"
        if rel in known or f.name.startswith("_"):
            continue
        stem = f.stem
        found.append(PageSpec(rel, stem.replace("_", " ").capitalize(), ":material/article:",
                              stem.replace("_", "-"), OTHER_SECTION))
    return found


def sections(pages: list[PageSpec]) -> dict[str, list[PageSpec]]:
    """Pages grouped by section, sections in first-appearance order."""
    out: dict[str, list[PageSpec]] = {}
    for p in pages:
        out.setdefault(p.section, []).append(p)
    return out
