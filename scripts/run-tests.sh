#!/usr/bin/env bash
# Runs the pytest suite twice, once per deployment (tests/support/backend.py), and fails if either run fails:
#   embedded  SQLite + blobs on the filesystem (what `dockyard serve` does with nothing configured)
#   scaleout  PostgreSQL (a database per server in a throwaway cluster, tests/support/postgres.py) and S3
#             (a bucket per server on a moto S3 server, tests/support/s3.py)
# DOCKYARD_TEST_BACKEND=embedded (or scaleout) runs only that one. Arguments go to both pytest runs.
# pytest's exit code 5 ("no tests collected") is a failure here: a suite that ran nothing has proven nothing.
# DOCKYARD_COVERAGE=1 (what `make coverage` sets) measures coverage, servers included.
set -uo pipefail
cd "$(dirname "$0")/.."
# The suite starts hundreds of Python processes (servers, workers, CLI runs) over the same sources: let the first
# one cache their bytecode. With PYTHONDONTWRITEBYTECODE set (as on this machine kind) each process compiled all of
# src/ again, a fifth of the suite's CPU.
unset PYTHONDONTWRITEBYTECODE

if [ -n "${DOCKYARD_TEST_BACKEND:-}" ]; then
  read -r -a backends <<<"$DOCKYARD_TEST_BACKEND"
else
  backends=(embedded scaleout)
fi

have_postgres() {
  .venv/bin/python -c 'from tests.support.postgres import find_bin_dir; raise SystemExit(find_bin_dir() is None)'
}

# The passes run side by side when there are two (each pytest mostly waits on its servers and clients), each with
# its own --basetemp and log, and each on DOCKYARD_TEST_WORKERS pytest-xdist workers (below); the logs are printed
# when both have finished, embedded first. DOCKYARD_TEST_SERIAL=1 runs them one after the other, printing as they go.
runnable=()
summary=()
for backend in "${backends[@]}"; do
  if [ "$backend" = scaleout ] && [ "${CI:-}" != true ] && ! have_postgres; then
    # Locally a missing PostgreSQL skips the run (under CI=true it runs, and fails: make test installs it).
    echo "=== scale-out run skipped: PostgreSQL is not installed (make system-deps installs it as root) ===" >&2
    summary+=("scaleout: SKIPPED (no PostgreSQL)")
    continue
  fi
  runnable+=("$backend")
done

# Lower case only: podman and buildah refuse an `oci:` layout path with capitals in it.
workdir="${TMPDIR:-/tmp}/dockyard-tests-$$-$(date +%s)"
rm -rf "$workdir" && mkdir -p "$workdir"
run_pass() {  # backend [pytest args…]; exit status: pytest's, with 5 ("no tests collected") as a failure
  local backend=$1
  shift
  local runner=(.venv/bin/python -m pytest)
  if [ "${DOCKYARD_COVERAGE:-}" = 1 ]; then
    # Coverage of src/ in the pytest process and in every Python process it starts (the servers: `patch =
    # subprocess` in pyproject.toml); `make coverage` combines the data files and prints the report.
    runner=(.venv/bin/python -m coverage run -m pytest)
  fi
  # Each pass spreads its test files over DOCKYARD_TEST_WORKERS pytest-xdist workers (default 2; 1: no xdist). A
  # file's tests stay on one worker, in order, so its module-scoped servers start once. Two single-process passes
  # kept 1.66 of the 2 cores busy (sampled over a whole run): each pytest waits on its servers and clients.
  local workers=${DOCKYARD_TEST_WORKERS:-2}
  local spread=()
  if [ "$workers" -gt 1 ]; then
    spread=(-n "$workers" --dist loadfile)
  fi
  DOCKYARD_TEST_BACKEND=$backend "${runner[@]}" -p no:cacheprovider "${spread[@]}" --durations=30 \
    --basetemp="$workdir/$backend" "$@"
  local status=$?
  if [ $status -eq 5 ]; then
    echo "pytest collected no tests (${backend} backend)" >&2
    status=1
  fi
  return $status
}

declare -A pids started status
parallel=$([ "${#runnable[@]}" -gt 1 ] && [ "${DOCKYARD_TEST_SERIAL:-}" != 1 ] && echo yes || echo no)
for backend in "${runnable[@]}"; do
  started[$backend]=$SECONDS
  if [ "$parallel" = yes ]; then
    echo "=== pytest on the ${backend} backend: started (log printed when it ends) ==="
    run_pass "$backend" "$@" >"$workdir/$backend.log" 2>&1 &
    pids[$backend]=$!
  else
    echo "=== pytest on the ${backend} backend ==="
    run_pass "$backend" "$@"
    status[$backend]=$?
    status[$backend.time]=$((SECONDS - started[$backend]))
  fi
done
if [ "$parallel" = yes ]; then
  for backend in "${runnable[@]}"; do
    wait "${pids[$backend]}"
    status[$backend]=$?
    status[$backend.time]=$((SECONDS - started[$backend]))
  done
  for backend in "${runnable[@]}"; do
    echo "=== pytest on the ${backend} backend (ran alongside the other pass) ==="
    cat "$workdir/$backend.log"
  done
fi

overall=0
for backend in "${runnable[@]}"; do
  result="passed"
  if [ "${status[$backend]}" -ne 0 ]; then
    result="FAILED (exit ${status[$backend]})"
    overall=1
  fi
  summary+=("${backend}: ${result} in ${status[$backend.time]} s")
  echo "=== ${backend} backend: ${result} ==="
done
rm -rf "$workdir"

for line in "${summary[@]}"; do echo "=== ${line} ==="; done
exit $overall
