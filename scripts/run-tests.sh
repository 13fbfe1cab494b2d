#!/usr/bin/env bash
# Runs the pytest suite. pytest's exit code 5 ("no tests collected") is a failure here: a suite that ran
# nothing has proven nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
if [ $status -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit $status
