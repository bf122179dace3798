#!/usr/bin/env bash
# The Python the tests use to check medrep's output against the ecosystem (test/sinks/meds.test.ts
# validates the MEDS output with the real `meds` package and reads it back with `meds_reader`).
# Creates .cache/venv once and installs the packages from PyPI; later runs only check them.
# Prints nothing on success but the venv's python path on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.cache/venv
PY="$VENV/bin/python"
say() { echo "python-venv.sh: $*" >&2; }
if [[ ! -x "$PY" ]]; then
  say "creating $VENV"
  python3 -m venv "$VENV" </dev/null >&2 || { say "python3 -m venv failed; the MEDS conformance test will fail"; exit 0; }
fi
if ! "$PY" -c 'import meds' 2>/dev/null; then
  say "installing meds 0.4.x"
  "$PY" -m pip install --quiet 'meds>=0.4,<0.5' </dev/null >&2 || say "pip install meds failed; the MEDS conformance test will fail"
fi
if ! "$PY" -c 'import meds_reader' 2>/dev/null; then
  "$PY" -m pip install --quiet meds_reader </dev/null >&2 || say "meds_reader did not install; the MEDS test validates without it"
fi
echo "$PWD/$PY"
