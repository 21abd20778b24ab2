# Sourced by the benchmarks that compare with numerai-tools (bench-evaluate.sh, bench-scale-v21.sh)
# from the repository root. Sets `py`, a Python with numerai-tools and pyarrow ($NT_VENV, default
# .venv-bench-nt, created when missing), and `bin`, the signalkit binary ($SIGNALKIT, built when
# missing).
venv=${NT_VENV:-.venv-bench-nt}
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check numerai-tools 'pyarrow>=15'; }
py="$venv/bin/python"
bin=${SIGNALKIT:-target/release/signalkit}
[ -x "$bin" ] || cargo build --release --locked
