#!/usr/bin/env bash
# Sets up .venv on a fresh machine. `--test` adds what the test suite needs.
# torch is pinned first so pip takes the local CPU build instead of a multi-GB CUDA one.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0
if [ "${1:-}" = "--test" ]; then
  "${pip[@]}" -e ".[test]"
else
  "${pip[@]}" -e .
fi
echo "kbagent installed in .venv ($(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("kbagent"))'))"
