#!/usr/bin/env bash
# The local benchmark's own Python venv for the optional meds_etl comparison (bench/medsEtl.ts):
# meds_etl with its C++ backend from PyPI. polars stays below 2: meds_etl 0.3.11 calls
# pl.read_csv_batched, which polars 2 removed. Prints the venv's python path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${MEDREP_BENCH_VENV:-.cache/bench-venv}
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" >&2
"$VENV/bin/python" -c 'import meds_etl, meds_etl_cpp' 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet 'meds_etl==0.3.11' 'meds_etl_cpp==0.3.4' 'polars>=1.30,<2' >&2
echo "$PWD/$VENV/bin/python"
