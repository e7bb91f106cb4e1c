#!/usr/bin/env bash
# The Dockerfile, built and served for real: builds the image, runs it, waits for its health check, opens share links
# in headless Chromium on the container and on the same app served outside it, and checks that the numbers are the
# same. Stops and removes the container it started (by name); keeps the image (its layers make the next build fast).
#
#   bash scripts/container-smoke.sh            (CI runs it after the test suite: .ci/run)
#
# Uses docker when a Docker engine answers, else podman (with runc and cgroupfs, which work in a sandbox without
# systemd). Installs what it needs (podman, runc, debootstrap; the app's own environment through scripts/dev.sh).
# When the upstream base image (python:3.11-slim) cannot be pulled, it makes a Debian bookworm base with debootstrap
# from the Debian mirror that apt uses here. The host's pip configuration (package mirrors, local wheel folders, CA
# bundle) is handed to the build read-only. Environment: DYNMASK_SMOKE_NAME (container and image name,
# default dynmask-smoke), DYNMASK_SMOKE_TORCH (cpu or cuda, default cpu), DEBIAN_MIRROR (for debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
NAME=${DYNMASK_SMOKE_NAME:-dynmask-smoke}
IMAGE="localhost/$NAME:latest"
BASE_NAME=dynmask-base-bookworm
UPSTREAM_BASE=docker.io/library/python:3.11-slim
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dynmask-smoke.XXXXXX")
T0=$(date +%s)
trap 'echo "container-smoke: failed at line $LINENO (exit $?)" >&2' ERR

say() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { echo "container-smoke: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  die "need root for: $*"; fi; }

# -- the app outside the container (the reference) and the browser ----------------------------------------------
say "the app's own environment (scripts/dev.sh setup)"
bash scripts/dev.sh setup

# -- a container engine --------------------------------------------------------------------------------------------
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=(docker)
  BUILD_OPTS=()
else
  missing=()
  for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq podman runc debootstrap >/dev/null
  fi
  # No ulimits or pids limit of podman's own: a sandbox refuses to set them. A private file, /etc is left alone.
  printf '[containers]\ndefault_ulimits = []\npids_limit = 0\n' > "$WORK/containers.conf"
  export CONTAINERS_CONF="$WORK/containers.conf"
  ENGINE=(podman --runtime runc --cgroup-manager=cgroupfs)
  # chroot isolation builds without a nested user namespace; the docker format keeps HEALTHCHECK.
  BUILD_OPTS=(--isolation chroot --format docker)
fi
say "engine: ${ENGINE[*]} ($("${ENGINE[0]}" --version))"

cleanup() {
  "${ENGINE[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
"${ENGINE[@]}" rm -f "$NAME" >/dev/null 2>&1 || true  # a container left by an interrupted run

# -- the base image ------------------------------------------------------------------------------------------------
debian_mirror() {  # the Debian archive apt uses here (deb822 or one-line sources), security archives aside
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f
  for f in /etc/apt/sources.list.d/*.sources; do [ -f "$f" ] && awk '/^URIs:/ {print $2}' "$f"; done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && awk '$1 == "deb" {print $2}' "$f"; done
  return 0
}

if "${ENGINE[@]}" image inspect "$UPSTREAM_BASE" >/dev/null 2>&1 || timeout 120 "${ENGINE[@]}" pull -q "$UPSTREAM_BASE" >/dev/null 2>&1
then
  BASE=$UPSTREAM_BASE
else
  BASE="localhost/$BASE_NAME:latest"
  if ! "${ENGINE[@]}" image inspect "$BASE" >/dev/null 2>&1; then
    mirror=$({ debian_mirror | grep -v -- '-security' | head -n1; } || true)
    [ -n "$mirror" ] || die "cannot pull $UPSTREAM_BASE and found no Debian mirror for debootstrap: set DEBIAN_MIRROR"
    command -v debootstrap >/dev/null || die "cannot pull $UPSTREAM_BASE and debootstrap is missing (apt-get install debootstrap)"
    say "cannot pull $UPSTREAM_BASE: making a Debian bookworm base with debootstrap"
    as_root debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    as_root tar -C "$WORK/rootfs" -c . | "${ENGINE[@]}" import - "$BASE" >/dev/null
    as_root rm -rf "$WORK/rootfs"
  fi
fi
say "base image: $BASE"

# -- the host's pip configuration, for the build ------------------------------------------------------------------
# Prints a pip.conf (index, extra indexes, find-links, CA bundle as pip sees them here), then the local folders and
# files it names, one per line after a "--" line; and whether a local folder holds the CPU wheel of torch 2.13.0.
"$ROOT/.venv/bin/python" - "$WORK" <<'PY'
import glob, os, subprocess, sys
from pathlib import Path
work = Path(sys.argv[1])
cfg = {}
listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
for line in listing.splitlines():
    key, _, value = line.partition("=")
    key = key.split(".", 1)[-1]
    cfg[key] = value.strip().strip("'\"")
for key, env in (("index-url", "PIP_INDEX_URL"), ("extra-index-url", "PIP_EXTRA_INDEX_URL"),
                 ("find-links", "PIP_FIND_LINKS"), ("cert", "PIP_CERT")):
    if os.environ.get(env):
        cfg[key] = os.environ[env]
conf, mounts, local_torch = ["[global]"], [], False
for key in ("index-url", "extra-index-url", "find-links", "cert"):
    if not cfg.get(key):
        continue
    conf.append(f"{key} = {cfg[key]}")
    for item in cfg[key].split():
        path = item[len("file://"):] if item.startswith("file://") else item
        if path.startswith("/") and os.path.exists(path):
            # an index's pages link to files beside it (../../files/...): hand over the folder above the index
            mounts.append(os.path.dirname(path.rstrip("/")) if key.endswith("index-url") else path)
            if key == "find-links" and glob.glob(os.path.join(path, "torch-2.13.0+cpu-*.whl")):
                local_torch = True
(work / "pip.conf").write_text("\n".join(conf) + "\n")
(work / "mounts").write_text("".join(m + "\n" for m in mounts))
(work / "local_torch").write_text("yes\n" if local_torch else "no\n")
PY
VOLUMES=()
if [ "${ENGINE[0]}" = podman ]; then
  VOLUMES+=(-v "$WORK/pip.conf:/etc/pip.conf:ro")
  while read -r path; do [ -n "$path" ] && VOLUMES+=(-v "$path:$path:ro"); done < "$WORK/mounts"
fi
TORCH_ARGS=(--build-arg "TORCH=${DYNMASK_SMOKE_TORCH:-cpu}")
[ "$(cat "$WORK/local_torch")" = yes ] && TORCH_ARGS+=(--build-arg TORCH_CPU_INDEX=)

# -- build ---------------------------------------------------------------------------------------------------------
say "building $IMAGE"
b0=$(date +%s)
"${ENGINE[@]}" build "${BUILD_OPTS[@]}" --network host "${VOLUMES[@]}" --build-arg "BASE=$BASE" "${TORCH_ARGS[@]}" \
  -t "$IMAGE" -f Dockerfile . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; die "the build failed"; }
BUILD_S=$(( $(date +%s) - b0 ))
# earlier builds of this image, now untagged: only dynmask's (by label), never another project's images
"${ENGINE[@]}" image prune -f --filter label=org.opencontainers.image.title=dynmask >/dev/null 2>&1 || true
SIZE=$("${ENGINE[@]}" image inspect "$IMAGE" --format '{{.Size}}')
grep -E '^torch [0-9]' "$WORK/build.log" | tail -1 || true
say "built in ${BUILD_S} s; image size $(( SIZE / 1000000 )) MB"

# -- run -----------------------------------------------------------------------------------------------------------
PORT=$("$ROOT/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
r0=$(date +%s.%N)
# (podman cannot reach systemd here to schedule the health check: it says so on stderr; run once below)
"${ENGINE[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:8501" "$IMAGE" >/dev/null 2>"$WORK/run.log" \
  || { cat "$WORK/run.log" >&2; die "could not start the container"; }
until [ "$(curl -fsS --max-time 2 "$URL/_stcore/health" 2>/dev/null)" = ok ]; do
  if [ "$("${ENGINE[@]}" inspect -f '{{.State.Running}}' "$NAME")" != true ]; then
    "${ENGINE[@]}" logs "$NAME" 2>&1 | tail -30 >&2; die "the container stopped"
  fi
  if (( $(date +%s) - ${r0%.*} > 180 )); then
    "${ENGINE[@]}" logs "$NAME" 2>&1 | tail -30 >&2; die "not healthy within 180 s"
  fi
  sleep 0.5
done
HEALTHY_S=$(awk -v a="$r0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
say "run -> /_stcore/health ok in ${HEALTHY_S} s at $URL"

# the image's own HEALTHCHECK, run once (docker runs it on its own interval: wait for its verdict)
if [ "${ENGINE[0]}" = podman ]; then
  "${ENGINE[@]}" healthcheck run "$NAME" || die "the image's HEALTHCHECK failed"
else
  for _ in $(seq 1 60); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$NAME")
    [ "$status" = healthy ] && break
    [ "$status" = unhealthy ] && die "the image's HEALTHCHECK failed"
    sleep 2
  done
  [ "$status" = healthy ] || die "the image's HEALTHCHECK gave no verdict in 120 s"
fi
USER_ID=$("${ENGINE[@]}" exec "$NAME" id -u)
[ "$USER_ID" != 0 ] || die "the container runs as root"
say "HEALTHCHECK passes; the app runs as uid $USER_ID"

# -- the same links, inside and outside ---------------------------------------------------------------------------
say "share links in headless Chromium: the container against the app served outside it"
HF_HUB_OFFLINE=1 "$ROOT/.venv/bin/python" scripts/container_check.py "$URL"

say "container smoke passed: build ${BUILD_S} s, image $(( SIZE / 1000000 )) MB, run -> healthy ${HEALTHY_S} s, in all $(( $(date +%s) - T0 )) s"
