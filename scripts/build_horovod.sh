#!/usr/bin/env bash
# Builds Horovod 0.28.1 (its last release) against this venv's torch, once, and caches the
# wheel outside the repo; then installs it. Horovod is an optional extra: only the trainer's
# `--distributed horovod` mode and its test need it.
#
# Three changes make 0.28.1 build against torch 2.14 (measured):
#  - --no-build-isolation: its build must import the torch it builds against;
#  - CUDA_HOME set to the CUDA toolkit's own folder, its bin/ first on PATH: torch is a CUDA
#    build, and an `nvcc` wrapper found first on PATH misleads Horovod's CUDA detection;
#  - CMAKE_CXX_STANDARD 20 instead of 14 (torch's headers need C++20).
set -euo pipefail
cd "$(dirname "$0")/.."
# The venv's real folder: .venv may be a link to the cached one (scripts/test.sh), and pip
# writes the path it was run by into horovodrun's first line; a clone's link dies with it.
PY="$(readlink -f .venv)/bin/python"
VERSION=0.28.1
TORCH=$($PY -c 'import torch; print(torch.__version__)')
CACHE="${SWEEP_HOROVOD_CACHE:-$HOME/.cache/sweep/horovod}/horovod-$VERSION-torch-$TORCH"

wheel=$(ls "$CACHE"/horovod-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "building Horovod $VERSION against torch $TORCH (about 7 minutes on 2 cores)..." >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  $PY -m pip install -q wheel "setuptools<81" cmake
  $PY -m pip download -q --no-deps --no-binary :all: "horovod==$VERSION" -d "$work"
  tar -xzf "$work/horovod-$VERSION.tar.gz" -C "$work"
  src="$work/horovod-$VERSION"
  sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 20)/' \
    "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
  grep -q 'CMAKE_CXX_STANDARD 20' "$src/horovod/torch/CMakeLists.txt"
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    CUDA_HOME=$(readlink -f /usr/local/cuda)
    export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
  fi
  HOROVOD_WITH_PYTORCH=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
  HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 MAKEFLAGS="-j$(nproc)" \
    $PY -m pip wheel -q --no-build-isolation --no-deps -w "$CACHE" "$src"
  wheel=$(ls "$CACHE"/horovod-*.whl | head -n 1)
fi
$PY -m pip install -q "$wheel"
$PY -c 'import horovod.torch as hvd; print("horovod", hvd.__version__ if hasattr(hvd, "__version__") else "ok")'
