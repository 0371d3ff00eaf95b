#!/usr/bin/env bash
# Build the documentation site into site/ (mkdocs build --strict), or serve it live.
#   bash scripts/build_docs.sh            # build (installs the docs extra into .venv if missing)
#   bash scripts/build_docs.sh serve      # live preview on http://127.0.0.1:8000
#   bash scripts/build_docs.sh figures    # regenerate docs/img/ and the generated pages first
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null; then
    "$PY" -m pip install -q -e ".[docs]"
fi
case "${1:-build}" in
    serve) exec "$PY" -m mkdocs serve ;;
    figures) "$PY" scripts/docs_figures.py && exec "$PY" -m mkdocs build --strict ;;
    build) "$PY" scripts/docs_figures.py --pages && exec "$PY" -m mkdocs build --strict ;;
    *) echo "usage: bash scripts/build_docs.sh [build|serve|figures]" >&2; exit 2 ;;
esac
