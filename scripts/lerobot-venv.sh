#!/usr/bin/env bash
# Builds .venv-lerobot: LeRobot's own code (v2.1 -> v3.0 converter, LeRobotDataset), for the interop test
# tests/datasets/test_lerobot_converter.py. Separate from .venv because `pip install lerobot` pins an older
# torch and would pull a multi-GB CUDA build: here torch 2.13.0 (the local CPU wheel) goes in first, LeRobot
# with --no-deps, then exactly the packages its dataset code imports, with torch held by a constraint.
# torchvision is the one import that cannot be installed for torch 2.13 on CPU (PyPI's wheel needs CUDA
# libraries, and it has no source release): scripts/lerobot_check/torchvision is a stand-in that satisfies
# LeRobot's imports and refuses at once if image transforms or torchvision video decoding are ever called.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lerobot
STAMP="$VENV/.installed-$(sha256sum "$0" | cut -c1-12)"
[ -f "$STAMP" ] && exit 0
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet --no-deps lerobot==0.4.4
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==2.13.0" > "$constraints"
# pip notes that LeRobot's own pins (torch<2.11, torchvision, wandb) are unmet: expected, so kept in a log.
"$VENV/bin/pip" install --quiet -c "$constraints" \
  datasets==4.8.5 huggingface-hub==0.35.3 jsonlines==4.0.0 draccus==0.10.0 av==15.1.0 packaging==25.0 \
  pillow accelerate==1.15.0 pandas pyarrow > "$VENV/pip.log" 2>&1 || { cat "$VENV/pip.log"; exit 1; }
touch "$STAMP"
echo "lerobot-venv.sh: LeRobot 0.4.4 ready in $VENV"
