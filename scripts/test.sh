#!/usr/bin/env bash
# Run the whole test suite offline. Sets up .venv first when needed (scripts/setup.sh is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
exec .venv/bin/python -m pytest "$@"
