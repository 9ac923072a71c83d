#!/usr/bin/env bash
# The dashboard in a real browser (crates/patchctl/tests/browser.rs): installs headless
# Chromium and chromedriver (Debian packages chromium, chromium-driver) when missing,
# then runs the browser flows against a real platform with a real agent. Screenshots of
# every page go to $PATCHCTL_ARTIFACTS (default target/ci-artifacts/screenshots).
# Runs as root with CI=true and no stdin; under CI=true a missing browser fails the test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
export CARGO_TERM_COLOR=never

need=()
for p in chromium chromium-driver fonts-dejavu-core; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v chromium >/dev/null || { echo "chromium is not installed" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "chromedriver is not installed" >&2; exit 1; }

export PATCHCTL_ARTIFACTS="${PATCHCTL_ARTIFACTS:-$PWD/target/ci-artifacts/screenshots}"
mkdir -p "$PATCHCTL_ARTIFACTS"
# The test runs the real agent binary, built beside patchctl.
cargo build -p patchctl-agent
cargo test -p patchctl --test browser
echo "screenshots: $PATCHCTL_ARTIFACTS"
ls -l "$PATCHCTL_ARTIFACTS"
