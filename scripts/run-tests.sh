#!/usr/bin/env bash
# Runs the pytest suite twice, once per deployment (tests/support/backend.py), and fails if either run fails:
#   embedded  SQLite + blobs on the filesystem (what `dockyard serve` does with nothing configured)
#   scaleout  PostgreSQL (a database per server in a throwaway cluster, tests/support/postgres.py) and S3
#             (a bucket per server on a moto S3 server, tests/support/s3.py)
# DOCKYARD_TEST_BACKEND=embedded (or scaleout) runs only that one. Arguments go to both pytest runs.
# pytest's exit code 5 ("no tests collected") is a failure here: a suite that ran nothing has proven nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DOCKYARD_TEST_BACKEND:-}" ]; then
  read -r -a backends <<<"$DOCKYARD_TEST_BACKEND"
else
  backends=(embedded scaleout)
fi

have_postgres() {
  .venv/bin/python -c 'from tests.support.postgres import find_bin_dir; raise SystemExit(find_bin_dir() is None)'
}

overall=0
summary=()
for backend in "${backends[@]}"; do
  if [ "$backend" = scaleout ] && [ "${CI:-}" != true ] && ! have_postgres; then
    # Locally a missing PostgreSQL skips the run (under CI=true it runs, and fails: make test installs it).
    echo "=== scale-out run skipped: PostgreSQL is not installed (make system-deps installs it as root) ===" >&2
    summary+=("scaleout: SKIPPED (no PostgreSQL)")
    continue
  fi
  echo "=== pytest on the ${backend} backend ==="
  start=$SECONDS
  DOCKYARD_TEST_BACKEND=$backend .venv/bin/python -m pytest -p no:cacheprovider "$@"
  status=$?
  if [ $status -eq 5 ]; then
    echo "pytest collected no tests (${backend} backend)" >&2
    status=1
  fi
  result="passed"
  if [ $status -ne 0 ]; then
    result="FAILED (exit ${status})"
    overall=1
  fi
  summary+=("${backend}: ${result} in $((SECONDS - start)) s")
  echo "=== ${backend} backend: ${result} ==="
done

for line in "${summary[@]}"; do echo "=== ${line} ==="; done
exit $overall
