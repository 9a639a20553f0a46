#!/usr/bin/env bash
# Build the Pilotlight image with podman, the way /work/shared/reference/containers.md measured it:
# a local Debian base from mmdebstrap (no registry is reachable), runc, host networking, the
# host CA lent to pip as a build secret, a private storage root. Idempotent: the base tarball
# and image are reused across runs.
#   image/build.sh [TAG]          (default pilotlight:dev; PG_MAJOR=15)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-pilotlight:dev}
PG_MAJOR=${PG_MAJOR:-15}
ROOT=${PILOTLIGHT_IMAGE_ROOT:-$PWD/.pilotlight/containers}
CACHE=${PILOTLIGHT_IMAGE_CACHE:-$HOME/.cache/pilotlight}
BASE_TAR=$CACHE/bookworm-minbase.tar
HOSTCA=/etc/ssl/certs/ca-certificates.crt

need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need mmdebstrap || ! need runc || ! need buildah; then
  if [ "$(id -u)" = 0 ]; then
    # A fresh machine may have no package lists yet: update once, only when the install needs it.
    tools() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah mmdebstrap runc >/dev/null; }
    tools || { apt-get update -q >/dev/null && tools; }
  else
    echo "image: podman, buildah, mmdebstrap and runc are needed: sudo apt-get install -y podman buildah mmdebstrap runc" >&2
    exit 2
  fi
fi
mkdir -p "$ROOT"
free_kb=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt 1500000 ]; then
  echo "image: less than 1.5 GB free under $ROOT; the build needs about 600 MB" >&2
  exit 2
fi
mkdir -p "$ROOT/storage" "$ROOT/run" "$CACHE"
podman_() { podman --root "$ROOT/storage" --runroot "$ROOT/run" --runtime runc --storage-driver overlay "$@"; }

if [ ! -s "$BASE_TAR" ]; then
  mmdebstrap --variant=minbase --mode=root --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$CACHE/bookworm-minbase.part.tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" </dev/null
  mv "$CACHE/bookworm-minbase.part.tar" "$BASE_TAR"
fi
if ! podman_ image exists docker.io/library/debian:bookworm-slim; then
  podman_ import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' "$BASE_TAR" docker.io/library/debian:bookworm-slim >/dev/null
fi
# AWS's RDS CA bundle (image/rds-ca/README.md): the tools verify RDS certificates against it.
BUNDLE=image/rds-ca/global-bundle.pem
BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
if [ ! -s "$BUNDLE" ]; then
  if curl -fsS --max-time 30 -o "$BUNDLE.part" "$BUNDLE_URL" 2>/dev/null && grep -q "BEGIN CERTIFICATE" "$BUNDLE.part"; then
    mv "$BUNDLE.part" "$BUNDLE"
  else
    rm -f "$BUNDLE.part"
    if [ "${PILOTLIGHT_REQUIRE_RDS_CA:-0}" = 1 ]; then
      echo "image: cannot download the RDS CA bundle from $BUNDLE_URL (PILOTLIGHT_REQUIRE_RDS_CA=1)" >&2
      exit 2
    fi
    echo "image: warning: no RDS CA bundle ($BUNDLE_URL unreachable); the image cannot verify RDS certificates" >&2
  fi
fi
podman_ build --pull=never --network host --build-arg "PG_MAJOR=$PG_MAJOR" \
  --secret "id=hostca,src=$HOSTCA" -t "$TAG" -f Dockerfile . >&2
podman_ image inspect --format '{{.Size}}' "$TAG"
