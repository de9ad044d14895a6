"""Share links: :class:`~ecisem_core.ui.state.ViewState` ↔ URL query parameters (pure functions, no Streamlit).

    params = encode(view)                           # {"tau": "0.1", "src": ["bm25", "llm"], ...}
    url = share_url("http://host:8501/geometry", params)
    view, notes = decode(parse_qs_from_somewhere)   # notes: what was ignored or adjusted, in plain words

Parameter names are short and stable: the view fields' (:data:`PARAMS`) and, for every registry setting that has
one, ``Setting.url`` (:func:`param_names` lists them all, in link order). Only settings that differ from the
defaults are written, unless ``full=True``. Query parameters that are not ours (another page's, e.g. an annotation
batch id) are left alone by :func:`merge_params`. Decoding never fails: a bad value falls back to the default (or
is clamped into its range) and says so in ``notes``.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from ecisem_core.config import Setting
from ecisem_core.embed.fingerprint import is_hub_name
from ecisem_core.ui.state import (COLOUR_OPTIONS, DATASET_DEMO, ENCODER_DEFAULT, ENCODER_TFIDF, HUB_PREFIX, PATH_PREFIX, RANGES,
                                  UPLOAD_PREFIX, MetricState, ViewState, nearest_option, ui_settings, ui_symbol)

PARAMS: dict[str, str] = {
    "dataset": "ds", "encoder": "enc", "sources": "src", "view": "view",
    "why_a": "A", "why_b": "B", "colour": "col", "query": "q", "cap": "cap",
}
"""View field → query-parameter name (the metric settings' names are in the registry: ``Setting.url``)."""
_BEFORE_METRIC = ("dataset", "encoder")
"""View fields written before the metric settings in a link (the rest follow them)."""

ParamValue = str | list[str]


def url_settings() -> tuple[Setting, ...]:
    """The registry settings a share link carries (those with a URL name)."""
    return tuple(s for s in ui_settings() if s.url is not None)


def param_names() -> list[str]:
    """Every query-parameter name of ours, in link order."""
    return ([PARAMS[f] for f in _BEFORE_METRIC] + [s.url for s in url_settings()]
            + [p for f, p in PARAMS.items() if f not in _BEFORE_METRIC])


def __getattr__(name: str) -> Any:
    if name == "OURS":  # every query-parameter name of ours, read from the registry when asked for
        return frozenset(param_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fmt(x: float) -> str:
    return format(float(x), ".6g")


def _encode_setting(s: Setting, value: Any) -> str | None:
    if s.per_dim or s.kind == "float":
        return _fmt(value)
    if s.kind == "int":
        return str(int(value))
    return str(value) if value != "" else None


def encode(view: ViewState, *, full: bool = False) -> dict[str, ParamValue]:
    """Query parameters for ``view`` (only non-default ones unless ``full``). Sources are repeated ``src``."""
    default = ViewState()
    out: dict[str, ParamValue] = {}

    def view_field(name: str) -> None:
        value = getattr(view, name)
        if not full and value == getattr(default, name):
            return
        param = PARAMS[name]
        if name == "sources":
            if value:
                out[param] = [str(s) for s in value]
        elif name == "cap":
            out[param] = str(int(value))
        elif value != "":
            out[param] = str(value)

    for name in _BEFORE_METRIC:
        view_field(name)
    for s in url_settings():
        value = view.metric[s.name]
        if (full or value != default.metric[s.name]) and value is not None:
            text = _encode_setting(s, value)
            if text is not None:
                out[s.url] = text
    for name in PARAMS:
        if name not in _BEFORE_METRIC:
            view_field(name)
    return out


def _last(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return value
    return str(value[-1]) if len(value) else ""


def as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _number(param: str, text: str, whole: bool, bounds: tuple[float, float] | None,
            notes: list[str]) -> float | int | None:
    """A number parameter clamped into ``bounds`` (and made whole), or None when it is not a number."""
    try:
        x = float(text)
        if not math.isfinite(x):
            raise ValueError
    except ValueError:
        notes.append(f"ignored {param}={text!r}: not a number")
        return None
    if bounds is not None:
        lo, hi = bounds
        if not lo <= x <= hi:
            clamped = min(max(x, lo), hi)
            notes.append(f"{param}={text} is outside [{lo:g}, {hi:g}]; using {clamped:g}")
            x = clamped
    if whole:
        if x != int(x):
            notes.append(f"{param}={text} is not a whole number; using {int(x)}")
        return int(x)
    return x


def _decode_setting(s: Setting, text: str, notes: list[str]) -> tuple[bool, Any]:
    """(ok, value) of a metric setting's parameter; a note says what was ignored or adjusted."""
    param = s.url
    if s.per_dim:
        try:
            x = float(text)
            if not (math.isfinite(x) and x > 0):
                raise ValueError
        except ValueError:
            notes.append(f"ignored {param}={text!r}: {ui_symbol(s)} must be a positive number")
            return False, None
        nearest = nearest_option(s, x)
        if not math.isclose(nearest, x, rel_tol=1e-9):
            notes.append(f"{param}={text} is not one of the {ui_symbol(s)} steps; using {nearest:g}")
        return True, nearest
    if s.kind in ("float", "int"):
        value = _number(param, text, s.kind == "int", s.ui_range, notes)
        if value is None:
            return False, None
    elif s.choices is not None and text not in s.choices:
        notes.append(f"ignored {param}={text!r}: expected one of {', '.join(map(str, s.choices))}")
        return False, None
    else:
        value = text
    problem = s.check(value)
    if problem:
        notes.append(f"ignored {param}={text!r}: {problem}")
        return False, None
    return True, value


def decode(params: Mapping[str, str | Sequence[str]]) -> tuple[ViewState, list[str]]:
    """The view from query parameters, and notes on anything ignored or adjusted. Unknown parameters are
    ignored silently (they belong to someone else); ours are validated."""
    values: dict[str, Any] = {}
    metric: dict[str, Any] = {}
    notes: list[str] = []

    def view_field(name: str) -> None:
        param = PARAMS[name]
        if param not in params:
            return
        raw = params[param]
        if name == "sources":
            values[name] = tuple(dict.fromkeys(s for s in as_list(raw) if s))
            return
        text = _last(raw).strip()
        if name == "cap":
            x = _number(param, text, True, RANGES[name], notes)
            if x is not None:
                values[name] = x
        elif name == "dataset":
            if text == DATASET_DEMO or (text.startswith((PATH_PREFIX, UPLOAD_PREFIX)) and len(text.split(":", 1)[1])):
                values[name] = text
            else:
                notes.append(f"ignored ds={text!r}: expected 'demo', 'path:<file>' or 'upload:<id>'")
        elif name == "encoder":
            if text in (ENCODER_DEFAULT, ENCODER_TFIDF) or (text.startswith(PATH_PREFIX) and len(text) > len(PATH_PREFIX)) \
                    or (text.startswith(HUB_PREFIX) and is_hub_name(text[len(HUB_PREFIX):])):
                values[name] = text
            else:
                notes.append(f"ignored enc={text!r}: expected 'default', 'tfidf', 'path:<folder>' or "
                             "'hf:<model name>'")
        elif name == "colour":
            if text in COLOUR_OPTIONS:
                values[name] = text
            else:
                notes.append(f"ignored col={text!r}: expected one of {', '.join(COLOUR_OPTIONS)}")
        else:
            values[name] = text

    for name in _BEFORE_METRIC:
        view_field(name)
    for s in url_settings():
        if s.url in params:
            ok, value = _decode_setting(s, _last(params[s.url]).strip(), notes)
            if ok:
                metric[s.name] = value
    for name in PARAMS:
        if name not in _BEFORE_METRIC:
            view_field(name)
    return ViewState(**values, metric=MetricState(metric)), notes


def merge_params(current: Mapping[str, str | Sequence[str]], ours: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """``current`` query parameters with ours replaced by ``ours`` (others kept as they are)."""
    names = set(param_names())
    out: dict[str, ParamValue] = {k: (v if isinstance(v, str) else list(v)) for k, v in current.items()
                                  if k not in names}
    out.update(ours)
    return out


def query_string(params: Mapping[str, ParamValue]) -> str:
    """``a=1&src=x&src=y`` (repeated keys for lists, percent-encoded)."""
    return urlencode([(k, v) for k, vals in params.items() for v in as_list(vals)])


PAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "explorer": ("xq", "xs", "xf", "xj", "xr", "xp", "xv"),  # search, sources, flags, ranges, map selection, verdict
    "compare": ("ca", "cb"),  # the two sides (views/compare.py)
    "annotate": ("batch",),  # the batch shown (the personal "annotator" parameter never goes into a share link)
}
"""Query parameters a page writes itself, by page (its url path): a share link made on that page carries them,
and they are dropped from the URL on the other pages."""


def page_params(view: str, current: Mapping[str, str | Sequence[str]]) -> dict[str, ParamValue]:
    """The parameters of page ``view`` present in ``current`` (what its share link adds to the view's own)."""
    names = PAGE_PARAMS.get(view, ())
    return {k: (v if isinstance(v, str) else list(v)) for k, v in current.items() if k in names}


def other_pages_params(view: str) -> frozenset[str]:
    """The page parameters of every page but ``view`` (left behind in the URL when the user changed page)."""
    return frozenset(k for page, names in PAGE_PARAMS.items() if page != view for k in names)


def share_url(base: str, params: Mapping[str, ParamValue]) -> str:
    """``base`` (scheme, host, page path; any query string dropped) + ``?`` + :func:`query_string`."""
    base = base.split("?", 1)[0].split("#", 1)[0]
    if base and not urlsplit(base).path:
        base += "/"
    qs = query_string(params)
    return f"{base}?{qs}" if qs else base


COPY_JS = """<script>
document.querySelectorAll('button.eci-copy').forEach(function (b) {
  if (b.dataset.ready) return;
  b.dataset.ready = '1';
  b.addEventListener('click', function () {
    var said = b.parentElement.querySelector('.eci-copied');
    navigator.clipboard.writeText(b.dataset.url).then(
      function () { said.textContent = 'Copied to the clipboard'; },
      function () { said.textContent = 'The browser refused the clipboard: copy the link below'; });
  });
});
</script>"""
"""The copy button's script: it holds no user text (the link travels in the button's escaped data attribute)."""


def copy_button_html(url: str) -> str:
    """A "Copy link" button that puts ``url`` on the clipboard (``navigator.clipboard``) and says so; the URL is
    html-escaped into a data attribute, never into the script."""
    return ('<div class="eci-copy-row"><button class="eci-copy" type="button" data-url="'
            + html.escape(url, quote=True) + '">Copy link</button> <span class="eci-copied" role="status"></span>'
            '</div><style>.eci-copy{border:1px solid #2563EB;background:#2563EB;color:#fff;border-radius:6px;'
            'padding:.3rem .8rem;cursor:pointer;font-size:.9rem}.eci-copied{color:#166534;font-size:.85rem;'
            'margin-left:.4rem}</style>' + COPY_JS)
