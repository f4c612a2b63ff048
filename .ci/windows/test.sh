#!/usr/bin/env bash
# Issue 16: the Windows test suite under Wine, and the Apple targets' `cargo check`.
# Idempotent: installs only what is missing (apt needs root), then prints how long it took.
#   .ci/windows/test.sh            everything
#   SKIP_CLI=1 .ci/windows/test.sh without the CLI's tests
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$(date +%s)

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v wine64 >/dev/null || [[ -x /usr/lib/wine/wine64 ]] || need+=(wine64)
if ((${#need[@]})); then
    echo "== apt-get install ${need[*]}"
    apt_started=$(date +%s)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    echo "apt install took $(($(date +%s) - apt_started)) s"
fi
rustup target add x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin >/dev/null 2>&1

# The runner (run.sh) keeps one persistent wineserver per prefix; stop it however this ends.
export FERROCASK_WINEPREFIX="${FERROCASK_WINEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/ferrocask-wine}"
trap 'WINEPREFIX="$FERROCASK_WINEPREFIX" wineserver -k >/dev/null 2>&1 || true' EXIT

# The linker and runner are set in .cargo/config.toml; .ci/windows/run.sh runs each test binary
# under Wine with the ProcessPrng shim next to it.
# No clippy or doctests here: the Linux run lints the same code and runs the same examples; this
# run is about the platform layer, under Wine.
echo "== cargo test -p ferrocask (windows, under Wine)"
cargo test -p ferrocask --target x86_64-pc-windows-gnu --lib --tests
if [[ -z "${SKIP_CLI:-}" ]]; then
    echo "== cargo test -p ferrocask-cli (windows, under Wine)"
    cargo test -p ferrocask-cli --target x86_64-pc-windows-gnu
fi
# The suite above builds only the library and the tests; the benches and examples must build
# for Windows too (the CLI's are built by its tests).
echo "== cargo check --benches --examples (windows)"
cargo check -p ferrocask --target x86_64-pc-windows-gnu --benches --examples
echo "windows took $(($(date +%s) - started)) s"
apple_started=$(date +%s)
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    echo "== cargo check --workspace ($target)"
    cargo check --workspace --all-targets --target "$target"
done
echo "apple checks took $(($(date +%s) - apple_started)) s; windows and apple $(($(date +%s) - started)) s"
