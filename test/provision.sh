#!/usr/bin/env bash
# The Debian packages the test suite needs, checked before mocha starts (`npm test` runs this as
# `pretest`; `.ci/run` calls it too, so this list is the only one).
#   chromium               headless browser for the page and report tests (playwright-core drives it)
#   python3-torch          PyTorch reference, trainer smoke test, checkpoint converter
#   python3-onnx           ONNX export of converted checkpoints and float16 variants
#   python3-pil            image I/O of the PyTorch reference
#   libopenblas0-pthread   a real BLAS for Debian's torch (the reference BLAS is ~70x slower)
#   redis-server           the shared job store of the multi-replica tests (REDIS_URL)
#   libimage-exiftool-perl ExifTool, reading the XMP marks of results as image tools do (issue 32)
# Missing ones are installed with apt-get when this user may (root, or sudo without a password);
# otherwise the script stops at once with the command to run. REWARD_EDIT_SKIP_PROVISION=1 skips it.
set -euo pipefail

PACKAGES=(chromium python3-torch python3-onnx python3-pil libopenblas0-pthread redis-server libimage-exiftool-perl)

if [ "${REWARD_EDIT_SKIP_PROVISION:-}" = "1" ]; then exit 0; fi
if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "provision: not a Debian-based system; the tests need the equivalents of: ${PACKAGES[*]}" \
    "(set REWARD_EDIT_SKIP_PROVISION=1 once they are installed)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "provision: the tests need Debian packages that are missing: ${missing[*]}; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "provision: installing ${missing[*]} (needed by the test suite; see test/provision.sh for why each)"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
