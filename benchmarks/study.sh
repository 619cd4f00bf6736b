#!/usr/bin/env bash
# The SHPM study of docs/results.md in one call, on any machine (CPU or one GPU), stopped at a
# deadline and resumable: a later call with the same RUNS folder continues where this one stopped.
#
#   bash benchmarks/study.sh ISBI_ROOT RUNS [DEADLINE_S] [JOBS]
#
# Three parts run at once (`toposeg cv --jobs`, one torch thread per worker process):
#   main    ISBI 2012 quick protocol, 7 methods (configs/isbi2012_quick), folds 0-4, seeds 0-2
#           -> RUNS/isbi2012_quick; then the SHPM variants (configs/isbi2012_quick_variants), seed 0,
#           into the same folder (their pre-training is shared with the main methods)
#   budget  the paper's budget (configs/isbi2012: 32-64-128, 256^2 patches, 4000 + 2000 steps) for
#           unet, cldice, shpm, shpm_plus, folds 0-1, seed 0 -> RUNS/isbi2012_budget
# JOBS (default: the CPU count) is split 3:1 between main and budget. Every part stops at
# DEADLINE_S seconds (default 3600) after the start; then one tar.gz per seed folder (no
# checkpoints, no curves) and the logs go to $OUT (or RUNS/packed), for `toposeg cv --report-only`.
# The GPU host of benchmarks/gpu.sh needs the same preparation (.whl/ with cripser, PYTHONPATH=src).
set -uo pipefail
cd "$(dirname "$0")/.."
ISBI=${1:?ISBI_ROOT}; RUNS=${2:?RUNS}; DEADLINE=${3:-3600}; JOBS=${4:-$(nproc)}
PACK=${OUT:-$RUNS/packed}
mkdir -p "$RUNS" "$PACK"
START=$(date +%s)
trap : INT  # the deadline's SIGINT stops the runs, not this script (it still packs)
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/toposeg-site .whl/*.whl \
        && export PYTHONPATH="/tmp/toposeg-site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TOPOSEG="python3 -m toposeg"
# a command that ends (SIGINT: stages save last.pt) at the deadline; skipped when under 10 s are left
until_deadline() { local t=$(( DEADLINE - ($(date +%s) - START) )); [ "$t" -ge 10 ] || return 124; timeout --signal=INT --kill-after=20 "$t" "$@"; }

# 1. smoke: every loss of the study, one step on the device, before any long work (exit 3 on failure)
python3 - <<'EOF' || exit 3
import torch, cripser, toposeg
from toposeg.losses import build_loss
from toposeg.skeleton import skeletonize
dev = "cuda" if torch.cuda.is_available() else "cpu"
print("toposeg", toposeg.__version__, "torch", torch.__version__, "device", dev,
      torch.cuda.get_device_name(0) if dev == "cuda" else "")
y = (torch.rand(2, 1, 64, 64, device=dev) > 0.7).float()
for name in ("bce_dice", "cldice", "skeleton_recall", "thpm", "phpm", "shpm", "shpm_plus"):
    x = torch.randn(2, 1, 64, 64, device=dev, requires_grad=True)
    build_loss(name)(x, y).backward()
    assert torch.isfinite(x.grad).all(), name
for method in ("thin", "zhang"):
    a = skeletonize(y > 0, method=method).cpu()
    b = skeletonize(y.cpu() > 0, method=method, backend="torch")
    assert torch.equal(a, b), f"{method}: device and CPU skeletons differ"
print("smoke passed")
EOF

MAIN_JOBS=$(( JOBS * 3 / 4 > 0 ? JOBS * 3 / 4 : 1 )); BUDGET_JOBS=$(( JOBS - MAIN_JOBS > 0 ? JOBS - MAIN_JOBS : 1 ))
COMMON="--data-root $ISBI --resume --no-progress --device auto"
# 2. budget study, in the background
( until_deadline $TOPOSEG cv 'configs/isbi2012/*.yaml' --methods unet,cldice,shpm,shpm_plus \
    --folds 0-1 --seed 0 --jobs "$BUDGET_JOBS" --out "$RUNS/isbi2012_budget" $COMMON ) > "$PACK/budget.log" 2>&1 &
BUDGET=$!
# 3. main table, then the variants
{ until_deadline $TOPOSEG cv 'configs/isbi2012_quick/*.yaml' --folds 0-4 --seed 0-2 \
      --jobs "$MAIN_JOBS" --out "$RUNS/isbi2012_quick" $COMMON \
  && until_deadline $TOPOSEG cv 'configs/isbi2012_quick*/*.yaml' \
      --methods unet,shpm,shpm_bce,shpm_t05,shpm_posneg,shpm_sample,shpm_lam01,shpm_gap,shpm_whole,shpm_crop,shpm_plus \
      --folds 0-4 --seed 0 --jobs "$MAIN_JOBS" --out "$RUNS/isbi2012_quick" $COMMON ; } > "$PACK/main.log" 2>&1
wait "$BUDGET"
echo "study stopped after $(( $(date +%s) - START )) s"
# 4. pack what finished (no checkpoints, no curves: toposeg cv --report-only needs neither)
for d in "$RUNS"/isbi2012_quick/seed* "$RUNS"/isbi2012_budget; do
    [ -d "$d" ] || continue
    parent=$(dirname "$d"); name=$(basename "$parent")_$(basename "$d")
    [ "$(basename "$d")" = isbi2012_budget ] && name=isbi2012_budget
    tar czf "$PACK/$name.tgz" --exclude='*.pt' --exclude='curves.png' -C "$parent" "$(basename "$d")" \
        $( [ -f "$parent/splits.json" ] && [ "$name" != isbi2012_budget ] && echo splits.json )
done
grep -h -c ' done in ' "$PACK"/*.log
ls -la "$PACK"
