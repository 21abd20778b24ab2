#!/usr/bin/env bash
# Executes every notebook in notebooks/ top to bottom (nbclient) against a run folder, default the
# sample run (made with `signalkit run` if missing, and RUN-pca8 beside it for compare_runs.ipynb).
# Executed copies go to RUN/notebooks/. Then checks that the executed copies show their figures
# inline: every figure cell must hold an image/png output and every notebook at least one
# (scripts/notebooks/check_notebook_pngs.py); fails otherwise.
#   bash scripts/notebooks/run-notebooks.sh [RUN_DIR]
# Env: NB_VENV (Python venv, default .venv-notebooks, made if missing),
#      SIGNALKIT (binary used to make a missing run, default target/release/signalkit).
set -euo pipefail
cd "$(dirname "$0")/../.."
run=$(realpath -m "${1:-runs/sample}")
venv=${NB_VENV:-.venv-notebooks}
signalkit=${SIGNALKIT:-target/release/signalkit}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check nbclient nbformat ipykernel polars pyarrow matplotlib
fi
[ -f "$run/evaluate/report.json" ] || "$signalkit" run --out "$run"
# compare_runs.ipynb compares the run with the same run on 8 principal components of [CLS].
[ -f "$run-pca8/evaluate/report.json" ] || "$signalkit" run --config scripts/notebooks/sample-pca8.toml --out "$run-pca8"
export SIGNALKIT=$(realpath "$signalkit")
mkdir -p "$run/notebooks"
executed=()
for nb in notebooks/*.ipynb; do
  out="$run/notebooks/$(basename "$nb")"
  SIGNALKIT_RUN="$run" "$venv/bin/python" - "$nb" "$out" <<'PY'
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}}).execute()
nbformat.write(nb, sys.argv[2])
print(f"ran {sys.argv[1]} -> {sys.argv[2]}")
PY
  executed+=("$out")
done
"$venv/bin/python" scripts/notebooks/check_notebook_pngs.py "${executed[@]}"
