#!/usr/bin/env bash
# Builds the page's WebAssembly module into web/pkg: the vae-web crate for
# wasm32-unknown-unknown, then wasm-bindgen's JavaScript glue. Installs the target, and the
# wasm-bindgen command-line tool at the version Cargo.lock pins, when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
    cargo install wasm-bindgen-cli --version "$version"
fi
# WebAssembly's 128-bit vectors (every current browser has them) for the products' loops.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} -C target-feature=+simd128" \
    cargo build --release --target wasm32-unknown-unknown -p vae-web
target=${CARGO_TARGET_DIR:-target}
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
    "$target/wasm32-unknown-unknown/release/vae_web.wasm"
