#!/usr/bin/env bash
# Cargo's runner for the x86_64-pc-windows-gnu target (set in .cargo/config.toml): runs a
# Windows executable (a test binary, the CLI) under Wine.
#
# * Debian's Wine 8 has no bcryptprimitives.dll export ProcessPrng, which Rust's std imports,
#   so no Rust program starts under it. The shim in bcryptprimitives.c is built with mingw
#   (once, and again when its source changes) and put next to the executable, where Wine's
#   loader looks first.
# * Wine keeps its state in a prefix; creating one takes a while the first time, so it lives in
#   a cache directory reused across runs (FERROCASK_WINEPREFIX overrides it), created quietly
#   without the Mono and Gecko installers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exe="$1"
shift

# Test binaries live in target/<triple>/<profile>/deps, the binaries they spawn (the CLI's
# `ferrocask.exe`) one level up: the shim goes next to both.
exe_dir="$(dirname "$exe")"
dirs=("$exe_dir")
[[ "$(basename "$exe_dir")" == deps ]] && dirs+=("$(dirname "$exe_dir")")
for dir in "${dirs[@]}"; do
    shim="$dir/bcryptprimitives.dll"
    if [[ ! -f "$shim" || "$here/bcryptprimitives.c" -nt "$shim" ]]; then
        x86_64-w64-mingw32-gcc -O2 -shared -o "$shim.tmp" "$here/bcryptprimitives.c" -ladvapi32
        mv "$shim.tmp" "$shim"
    fi
done

export WINEPREFIX="${FERROCASK_WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrocask-wine}"
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
wine=wine64
command -v wine64 >/dev/null || wine=/usr/lib/wine/wine64
if [[ ! -f "$WINEPREFIX/system.reg" ]]; then
    mkdir -p "$WINEPREFIX"
    "$wine" wineboot --init >/dev/null 2>&1
    wineserver -w
fi
# Keep one wineserver alive across test binaries: one that exits after its idle timeout while
# the next binary connects fails that binary with "wine client error: recvmsg: Connection reset
# by peer" (seen in CI). `-p` makes it persistent; it is a no-op if one is already running.
# .ci/windows/test.sh stops it at the end.
wineserver -p >/dev/null 2>&1 || true
exec "$wine" "$exe" "$@"
