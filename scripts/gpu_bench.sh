#!/usr/bin/env bash
# The GPU run of the performance suite (issues 13, 15): about ten minutes on one GPU, run unchanged from the
# repository root with the package installed. Writes everything under ${OUT:-gpu-perf}/ and prints it;
# copy the figures, with the date and device, into docs/performance.md.
#   bash scripts/gpu_bench.sh            (OUT=/some/folder bash scripts/gpu_bench.sh)
set -uo pipefail
OUT=${OUT:-gpu-perf}
PY=${PYTHON:-python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
status=0
step() {  # step NAME SECONDS COMMAND...: one step, its log kept, the script going on if it fails
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" || { echo "== $name FAILED"; status=1; }
}
# the projection's rates (issue 15): every dataset and model's images/s at the paper settings, and the
# gain of packing four trials onto the GPU; copy the file to bench/cost/rates/ for the projection to use
step rates 420 $PY -m bench.cost.projection --measure "$OUT/rates.json"
# the suite on the GPU (TF32 off): the Trainer against a bare loop, channels_last, SVAE/VAE; training
# images/s at the MNIST and CelebA paper settings in float32 and bf16 autocast; the sweep, cache, memory;
# the FID engine against pytorch-fid on 100 images
step all 360 $PY -m bench.cost.perf all --device cuda --out "$OUT/suite"
# FID features against pytorch-fid at a GPU's scale: 1000 images at CIFAR-10's shape, batch 200
step fid 150 $PY -m bench.cost.perf fid --device cuda --n 1000 --batch-size 200 --skip-distance
# four smoke trials packed on the GPU at a quarter each
step smoke-gpu 240 $PY -m bench.run --preset smoke --datasets synthetic --seeds 2 --models svae vae \
  --fid-samples 200 --gpus-per-trial 0.25 --out "$OUT/smoke-gpu"
du -sh "$OUT/smoke-gpu" 2>/dev/null
exit $status
