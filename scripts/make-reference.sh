#!/usr/bin/env bash
# Regenerates data/fixtures/{metrics,lightgbm}.json with numerai-tools and Python lightgbm
# (the versions pinned below) in a private venv, .venv-ref. Only needed when the formulas change.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-ref/bin/python ]; then
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install -q --disable-pip-version-check 'numerai-tools==0.7.2' 'lightgbm==4.7.0' 'pandas==3.1.1' 'numpy==2.4.6' 'scipy==1.17.1' pyarrow polars matplotlib
fi
.venv-ref/bin/python scripts/make_reference.py data/fixtures
