#!/usr/bin/env bash
# Executes every notebook in notebooks/ top to bottom (nbclient) against a run folder, default the
# sample run (made with `signalkit run` if missing). Executed copies go to RUN/notebooks/.
#   bash scripts/run-notebooks.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=$(realpath -m "${1:-runs/sample}")
venv=.venv-notebooks
if [ ! -x $venv/bin/python ]; then
  python3 -m venv $venv
  $venv/bin/pip install -q --disable-pip-version-check nbclient nbformat ipykernel polars pyarrow matplotlib
fi
[ -f "$run/evaluate/report.json" ] || target/release/signalkit run --out "$run"
mkdir -p "$run/notebooks"
for nb in notebooks/*.ipynb; do
  SIGNALKIT_RUN="$run" $venv/bin/python - "$nb" "$run/notebooks/$(basename "$nb")" <<'PY'
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, sys.argv[2])
print(f"ran {sys.argv[1]} -> {sys.argv[2]}")
PY
done
