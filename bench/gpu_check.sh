#!/usr/bin/env bash
# One short check on a GPU machine, run from the repository root; prints figures, keeps logs in $OUT.
#   bash bench/gpu_check.sh [PARAMS]      (PARAMS: the demo's params.yaml by default)
#
#  1. the machine: GPU, torch, CUDA, NCCL;
#  2. timed training steps at paper size (R50, 6+6 layers, 100 queries, batch 2, 800 x 800 px),
#     fp32 against bf16 autocast, QPIC and HQM (bench/train_step.py --device cuda);
#  3. NCCL: a one-rank process group and an all_reduce on the GPU (one GPU cannot hold two ranks);
#  4. the CPU demo's stability bench on every core but two (bench/demo_stability.py, the four
#     variants, seeds 1-3): another CPU and another torch build;
#  5. alongside it, one demo training on the GPU with train.bf16 (hqm train --device cuda), from
#     scratch so that it need not wait for the bench's DETR.
#
# It needs only Python with torch, numpy, scipy, pyyaml and tabulate: hqm runs from src/ (PYTHONPATH)
# through a shim `hqm` on PATH, so nothing is installed.
set -u
params=${1:-params.yaml}
out=${OUT:-gpu_check_out}
mkdir -p "$out"
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
shim=$(mktemp -d)
printf '#!/bin/sh\nexec python3 -m hqm.cli "$@"\n' > "$shim/hqm" && chmod +x "$shim/hqm"
export PATH=$shim:$PATH
work=$(mktemp -d)
jobs=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))  # one core for the GPU training, one for the bench itself

echo "== 1. machine"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version(), "gpu", torch.cuda.get_device_name(0))'

echo "== 2. timed steps, paper size"
for variant in qpic hqm; do
  for bf16 in "" --bf16; do
    python3 bench/train_step.py --device cuda $bf16 --variant "$variant" --image-size 800 --batch 2 --steps 20 \
      | tee -a "$out/train_step.jsonl"
  done
done

echo "== 3. NCCL"
python3 - <<'PY'
import torch, torch.distributed as dist
dist.init_process_group("nccl", init_method="tcp://127.0.0.1:29533", rank=0, world_size=1)
t = torch.arange(4, dtype=torch.float32, device="cuda")
dist.all_reduce(t)
print("nccl all_reduce, 1 rank:", t.tolist(), "backend", dist.get_backend())
dist.destroy_process_group()
PY

echo "== 4. CPU stability bench in the background, $jobs trainings at a time"
python3 bench/demo_stability.py --params "$params" --work "$work/bench" --variants qpic gbs amm hqm \
  --extra-threads 0 --jobs "$jobs" > "$out/stability.log" 2>&1 &
bench=$!

echo "== 5. meanwhile a demo training on the GPU: HQM, bf16, from scratch (no DETR), 1 CPU core"
python3 - "$params" "$work/gpu_params.yaml" "$work/gpu_data" <<'PY'
import sys, yaml
p = yaml.safe_load(open(sys.argv[1]))
p["train"]["bf16"] = True
p["experiment"]["backbone_weights"] = "none"
p["datasets"]["synthetic_hico"]["root"] = sys.argv[3]
yaml.safe_dump(p, open(sys.argv[2], "w"), sort_keys=False)
PY
run=$work/gpu_run
mkdir -p "$run"
hqm make-synthetic --format hico --params "$work/gpu_params.yaml" --out "$work/gpu_data" > /dev/null
hqm resolve-config --params "$work/gpu_params.yaml" --dataset synthetic_hico --variant hqm --seed 1 \
  --out "$run/run_config.yaml" > /dev/null
start=$(date +%s)
hqm train --config "$run/run_config.yaml" --out "$run" --nproc 1 --device cuda > "$out/gpu_train.log" 2>&1
echo "exit $? in $(( $(date +%s) - start )) s"
grep "done" "$out/gpu_train.log" | tail -4
cp "$run/curves.csv" "$out/gpu_curves.csv" 2>/dev/null

wait $bench
echo "== 4. stability bench: exit $?"
grep -v "^\[" "$out/stability.log" | grep -v "^{" | tail -45
rm -rf "$shim" "$work"
