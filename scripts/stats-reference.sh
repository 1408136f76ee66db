#!/usr/bin/env bash
# Regenerates tests/data/stats_reference.json from SciPy/NumPy/statsmodels at the versions
# pinned in scripts/requirements-stats.txt, in a throwaway virtual environment kept in the
# user's cache (outside the repository). A rerun reproduces the file byte for byte:
#
#   scripts/stats-reference.sh && git diff --exit-code tests/data/stats_reference.json
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=scripts/requirements-stats.txt
key=$(sha256sum "$requirements" | cut -c1-12)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/harness/stats-venv-$key"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi
"$venv/bin/python" scripts/stats_reference.py tests/data/stats_reference.json
