#!/usr/bin/env bash
# Set up medseg in ./.venv (idempotent). Takes the CPU build of PyTorch on machines without
# an NVIDIA GPU, then installs medseg with its extras. Usage: bash scripts/setup.sh
#   PYTHON=python3.12 bash scripts/setup.sh       choose the interpreter (>= 3.10)
#   MEDSEG_TORCH_INDEX=URL bash scripts/setup.sh  take torch from this wheel index (e.g. the
#                                                 PyTorch CPU index on machines without a local wheel)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${MEDSEG_TORCH_VERSION:-2.13.0}

"$PY" - <<'PYCHECK' || { echo "medseg needs Python >= 3.10 (set PYTHON=...)" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PYCHECK

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "==> NVIDIA GPU found: installing torch==$TORCH_VERSION (CUDA build)"
    "$VPY" -m pip install -q "torch==$TORCH_VERSION"
  elif [ -n "${MEDSEG_TORCH_INDEX:-}" ]; then
    echo "==> no GPU: installing CPU torch==$TORCH_VERSION from $MEDSEG_TORCH_INDEX"
    "$VPY" -m pip install -q --index-url "$MEDSEG_TORCH_INDEX" "torch==$TORCH_VERSION"
  else
    echo "==> no GPU: installing torch==$TORCH_VERSION (a local CPU wheel is preferred when pip's find-links has one)"
    "$VPY" -m pip install -q --prefer-binary "torch==$TORCH_VERSION"
  fi
fi

if ! "$VPY" -c "import medseg, monai, skops, imagecodecs, highdicom" >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.medseg-installed ]; then
  echo "==> installing medseg and its dependencies"
  "$VPY" -m pip install -q -e ".[onnx,web,test,docs,dicom-seg,ray]"
  touch .venv/.medseg-installed
fi
echo "==> medseg $("$VPY" -c 'import medseg; print(medseg.__version__)') ready in .venv (torch $("$VPY" -c 'import torch; print(torch.__version__)'))"
