#!/usr/bin/env bash
# Installs the system tools the test suite and the benchmark drive, from Debian's packages.
# As root it uses apt-get; otherwise it only reports what is missing (the tests then skip, except under CI=true).
set -euo pipefail

PACKAGES=(git skopeo podman buildah umoci busybox-static docker-registry wrk uidmap fuse-overlayfs crun postgresql mmdebstrap chromium chromium-driver nginx prometheus nodejs npm slapd ldap-utils golang-go strace)
# git: the build executor checks source out with it (its tests serve repositories with `git daemon`); the executor
# also needs unshare and prlimit, from util-linux (essential on Debian, so never missing there).
# chromium: the web hub's browser tests (tests/web) drive Debian's browser through Playwright.
# slapd, ldap-utils: the LDAP sign-in tests (tests/auth) start their own OpenLDAP server (slapadd builds its config).
# golang-go: the SBOM test builds a Go binary into an image layer (tests/clients/test_sbom_languages.py, which also
# runs npm install).
# nginx: the TLS-terminating proxy recipe (deploy/nginx) is run by its test. (podman-compose, which checks
# deploy/compose.yaml, comes from the lock file: Debian bookworm's 1.0.3 has no `config` command.)
# prometheus: its promtool checks /metrics (tests/api/test_metrics_routes.py).
# nodejs, npm: the single sign-on tests run an OpenID provider (the npm package oidc-provider, installed by
# scripts/install-node-deps.sh from tests/support/oidc/package-lock.json).
# strace: a test counts the close(2) calls of child processes' pipes (tests/unit/core/test_subprocesses.py).
TOOLS=(git unshare prlimit skopeo podman buildah umoci busybox docker-registry wrk mmdebstrap chromium chromedriver nginx promtool node npm slapadd go strace)

missing=()
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The scale-out test run starts its own PostgreSQL clusters with the server programs (initdb, pg_ctl), which
# Debian keeps off PATH in /usr/lib/postgresql/<version>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# skopeo and podman that sign and verify sigstore signatures (Debian bookworm's are built without): after the
# packages above, since it uses mmdebstrap; it keeps an existing installation.
sigstore_clients() { bash "$(dirname "$0")/install-sigstore-clients.sh"; }
if [ ${#missing[@]} -eq 0 ]; then
  echo "system tools present: ${TOOLS[*]} postgresql"
  sigstore_clients
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system tools (run as root to install): ${missing[*]}" >&2
  exit 0
fi
# A Node.js that is there already stays (the machine's may be NodeSource's, whose nodejs package carries npm and
# conflicts with Debian's npm package: asking for both then fails the whole install).
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  kept=()
  for package in "${PACKAGES[@]}"; do
    [[ $package == nodejs || $package == npm ]] || kept+=("$package")
  done
  PACKAGES=("${kept[@]}")
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# slapd asks debconf for a directory of its own: none (the tests build theirs).
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
# The reference registry is a service of its own on Debian; the benchmark starts it by hand.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
pkill -x docker-registry >/dev/null 2>&1 || true
# Likewise nginx's default site: its test runs nginx itself, unprivileged, with the recipe.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
# And Prometheus' server: only its promtool is used.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true
# Likewise slapd's service: the LDAP tests start their own (tests/support/ldap.py).
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now slapd >/dev/null 2>&1 || true; fi
# Likewise PostgreSQL's default cluster: the tests never use it (tests/support/postgres.py starts their own).
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi
echo "installed: ${PACKAGES[*]}"
sigstore_clients
