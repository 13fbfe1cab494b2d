#!/usr/bin/env bash
# Installs the npm packages the tests run, from their lock file: tests/support/oidc (the OpenID provider that the
# single sign-on tests, tests/web/test_oidc_pages.py, start on loopback). Node.js and npm come from Debian
# (scripts/install-system-deps.sh). Without npm the tests that need it skip, except under CI=true: then this fails.
set -euo pipefail

cd "$(dirname "$0")/../tests/support/oidc"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "node and npm are missing (make system-deps installs Debian's nodejs and npm when run as root)" >&2
    exit 1
  fi
  echo "node or npm is missing: the single sign-on tests will be skipped (make system-deps installs them as root)" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "npm packages installed in tests/support/oidc"
