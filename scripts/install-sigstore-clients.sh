#!/usr/bin/env bash
# Installs a skopeo and a podman that sign and verify sigstore (cosign) signatures, for the real-client signing
# tests (tests/clients/test_signing_keys.py), into $DOCKYARD_SIGSTORE_CLIENTS (default /opt/dockyard-sigstore-clients):
#   bin/skopeo, bin/podman, bin/conmon   runnable on this machine
#   containers.conf                      points podman at its helper binaries (netavark) in the tree
#   rootfs/                              the Debian tree they come from
#
# Why not Debian bookworm's own: its skopeo 1.9.3 and podman 4.3.1 are built with sigstore disabled (a Debian-local
# patch: signing and verifying a `sigstoreSigned` policy both fail with "Debian-local change: sigstore disabled").
# Debian trixie's (skopeo 1.18, podman 5.4) have it, but need glibc 2.38 where bookworm has 2.36. So this makes a
# trixie tree with mmdebstrap (Debian's packages, nothing else) and copies its skopeo, podman and conmon into bin/
# with patchelf pointing their ELF interpreter and RPATH into the tree. They run with the host's paths and files,
# and podman's re-executed children (it applies layers in one) work, which running them through the tree's ld.so
# by hand would break (/proc/self/exe would be ld.so).
#
# Idempotent: an existing, working installation of the same recipe is kept. As root only; otherwise it reports.
set -euo pipefail

DEST="${DOCKYARD_SIGSTORE_CLIENTS:-/opt/dockyard-sigstore-clients}"
SUITE=trixie
RECIPE="$SUITE skopeo podman conmon patchelf-v1"

if [ -f "$DEST/recipe" ] && [ "$(cat "$DEST/recipe")" = "$RECIPE" ] \
  && "$DEST/bin/skopeo" --version >/dev/null 2>&1 && "$DEST/bin/podman" --version >/dev/null 2>&1; then
  echo "sigstore clients present in $DEST: $("$DEST/bin/skopeo" --version), $("$DEST/bin/podman" --version)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "sigstore-capable skopeo/podman missing (run as root to install them into $DEST)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v mmdebstrap >/dev/null 2>&1 || ! command -v patchelf >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends mmdebstrap patchelf >/dev/null
fi

work="$DEST.new"
rm -rf "$work"
mkdir -p "$work/bin"
mmdebstrap --quiet --variant=essential --include=skopeo,podman \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  "$SUITE" "$work/rootfs"

root="$DEST/rootfs"  # where the tree will be: patchelf writes absolute paths
libdir=$(cd "$work/rootfs/usr/lib" && echo *-linux-gnu)
for tool in skopeo podman conmon; do
  cp "$work/rootfs/usr/bin/$tool" "$work/bin/$tool"
  interpreter=$(patchelf --print-interpreter "$work/bin/$tool")
  patchelf --set-interpreter "$root$interpreter" --force-rpath --set-rpath "$root/usr/lib/$libdir" "$work/bin/$tool"
done
cat >"$work/containers.conf" <<EOF
[engine]
helper_binaries_dir = ["$root/usr/lib/podman", "$root/usr/libexec/podman"]
conmon_path = ["$DEST/bin/conmon"]
EOF
echo "$RECIPE" >"$work/recipe"
rm -rf "$DEST"
mv "$work" "$DEST"
echo "installed into $DEST: $("$DEST/bin/skopeo" --version), $("$DEST/bin/podman" --version)"
