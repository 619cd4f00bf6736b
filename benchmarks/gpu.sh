#!/usr/bin/env bash
# All GPU measurements of toposeg in one run (benchmarks/gpu.py). Usage, from the repository root:
#
#   bash benchmarks/gpu.sh [--quick] [--isbi-root .data/isbi2012] [--budget 540]
#
# The GPU host has its own Python and PyTorch with CUDA, scikit-image and SciPy, and no package
# index. toposeg is used from the source tree (PYTHONPATH=src). Wheels it lacks (cripser for PHPM)
# travel in a git-ignored folder .whl/, prepared on a machine with an index:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl cripser
# The ISBI sections travel in a git-ignored folder too (e.g. .data/isbi2012). JSON goes to $OUT
# (or benchmarks/results/gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/toposeg-site .whl/*.whl \
        && export PYTHONPATH="/tmp/toposeg-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
exec python3 benchmarks/gpu.py --out "${OUT:-benchmarks/results/gpu}" "$@"
