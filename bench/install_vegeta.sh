#!/usr/bin/env bash
# Build the HTTP load generator the benchmarks use, vegeta (https://github.com/tsenart/vegeta), into bench/.bin/.
#
# Idempotent: does nothing when bench/.bin/vegeta is already the pinned version. The version and every dependency
# are pinned by bench/tools/go.mod and go.sum (checked against sum.golang.org on first download); sources come
# from the Go module proxy ($GOPROXY, default https://proxy.golang.org). Needs Go >= 1.22.
#
# Why build from a module instead of `go install github.com/tsenart/vegeta/v12@v12.12.0`: `go install pkg@version`
# also asks the proxy for the module's version list (to print deprecation notices), and some proxies refuse that
# listing; building inside our own pinned module asks only for the exact versions in go.sum.
#
# Prints the binary's path on stdout; progress and errors on stderr; exit 1 with what to do when it cannot build.
set -euo pipefail

VERSION="v12.12.0"  # keep in step with bench/tools/go.mod
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin_dir="$here/.bin"
binary="$bin_dir/vegeta"
stamp="$bin_dir/vegeta.version"

if [[ -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$VERSION" ]]; then
    echo "$binary"
    exit 0
fi

go_bin="${GO:-}"
if [[ -z "$go_bin" ]]; then
    go_bin="$(command -v go || true)"
    [[ -z "$go_bin" && -x /usr/local/go/bin/go ]] && go_bin=/usr/local/go/bin/go
fi
if [[ -z "$go_bin" ]]; then
    echo "error: the Go toolchain (>= 1.22) is needed to build vegeta, and \`go\` is not on PATH." >&2
    echo "  → install it (https://go.dev/dl/ or \`apt-get install golang-go\`), or set GO=/path/to/go" >&2
    exit 1
fi

echo "building vegeta $VERSION with $("$go_bin" version) into $bin_dir ..." >&2
mkdir -p "$bin_dir"
if ! (cd "$here/tools" && "$go_bin" build -mod=readonly -buildvcs=false -trimpath \
    -ldflags "-s -w -X main.Version=$VERSION" -o "$binary.tmp" github.com/tsenart/vegeta/v12 >&2); then
    rm -f "$binary.tmp"
    echo "error: could not build vegeta $VERSION." >&2
    echo "  → the Go module proxy must be reachable (GOPROXY=$("$go_bin" env GOPROXY)); see the go error above" >&2
    exit 1
fi
mv "$binary.tmp" "$binary"
echo "$VERSION" >"$stamp"
echo "vegeta $VERSION ready: $binary" >&2
echo "$binary"
