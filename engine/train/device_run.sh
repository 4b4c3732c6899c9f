#!/usr/bin/env bash
# One device call: the target's HF directory, the training data, the plain and the
# attention-aligned EAGLE-3 drafts, their attention recall, and the long-context variant.
# Drafts, logs and JSON go to $OUT; the large intermediates (target weights, data, checkpoints)
# to WORK_DIR. Every stage is skipped when its output exists, so a cut-off run resumes.
#   OUT=... engine/train/device_run.sh GGUF_FILE BUNDLE_DIR [WORK_DIR]
#   OUT=... TINY=1 engine/train/device_run.sh - - WORK_DIR    (CPU check with a random tiny target;
#       needs TOKENIZER_FROM=an HF directory with SmolLM2's tokenizer.json)
# Knobs: TRAIN_SECONDS (per draft, default 150), FINETUNE_SECONDS (long-context LoRA, default 0),
# LONG_ROPE (yarn or theta, default yarn).
set -euo pipefail
gguf=$1
bundle=$2
work=${3:-build-train}
out=${OUT:?set OUT to the results directory}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$work" "$out/logs" "$out/drafts"
failed=0
stamp() { echo "$(date +%H:%M:%S) [device_run] $*"; }
stage() {  # stage NAME DONE_FILE COMMAND...
  local name=$1 done_file=$2
  shift 2
  if [[ -e $done_file ]]; then
    stamp "$name: done already ($done_file)"
    return
  fi
  stamp "$name: start"
  local t0=$SECONDS
  # A failed stage is reported and the independent later ones still run.
  if "$@" 2>&1 | tee -a "$out/logs/$name.log"; then
    stamp "$name: finished in $((SECONDS - t0))s"
  else
    stamp "$name: FAILED after $((SECONDS - t0))s (see $out/logs/$name.log)"
    failed=1
  fi
}

if [[ ${TINY:-0} == 1 ]]; then
  train_seconds=${TRAIN_SECONDS:-20}
  data_args=(--sequences 8 --new-tokens 24 --batch 4 --long-docs 12 --long-min 700
             --long-max 1200 --draft-vocab 1024)
  train_args=(--steps 12 --short-batch 2 --long-max 1200 --align-rows 16 --ckpt-every 5
              --log-every 4)
  eval_args=(--docs 2 --min-len 900 --max-len 1200 --rows 8 --budgets 16,64,256)
  long_args=(--lengths 700,1400 --samples 1 --finetune-len 900 --finetune-steps 3)
  prepare=(--tiny --tokenizer-from "${TOKENIZER_FROM:?}")
else
  train_seconds=${TRAIN_SECONDS:-150}
  data_args=()
  train_args=()
  eval_args=()
  long_args=()
  prepare=(--gguf "$gguf" --bundle "$bundle")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader |
    tee "$out/gpu.txt" || true
fi
$py -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.cuda.is_available())' | tee "$out/versions.txt"

target=$work/target
stage prepare_target "$target/config.json" \
  $py "$here/prepare_target.py" --out "$target" "${prepare[@]}"
stage make_data "$work/data.pt" \
  $py "$here/make_data.py" --target "$target" --out "$work/data.pt" "${data_args[@]}"
for variant in plain align; do
  flags=()
  [[ $variant == align ]] && flags=(--align-attention)
  stage "train_$variant" "$out/drafts/eagle3-$variant/model.safetensors" \
    $py "$here/train_draft.py" --target "$target" --data "$work/data.pt" \
    --out "$out/drafts/eagle3-$variant" --work "$work/ckpt-$variant" \
    --max-seconds "$train_seconds" "${flags[@]}" "${train_args[@]}"
  if [[ -f $work/ckpt-$variant/train_summary.json ]]; then
    cp "$work/ckpt-$variant/train_summary.json" "$out/drafts/train_summary_$variant.json"
  fi
done
stage eval_recall "$out/recall.json" \
  $py "$here/eval_recall.py" --target "$target" --draft "plain=$out/drafts/eagle3-plain" \
  --draft "align=$out/drafts/eagle3-align" --out "$out/recall.json" "${eval_args[@]}"
delta_args=()
if [[ ${FINETUNE_SECONDS:-0} != 0 ]]; then
  delta_args=(--finetune-seconds "$FINETUNE_SECONDS" --delta-out "$out/long_context_delta.safetensors")
fi
stage long_context "$out/passkey.json" \
  $py "$here/make_long_context_target.py" --target "$target" --variant "$work/target-32k" \
  --rope "${LONG_ROPE:-yarn}" --out-json "$out/passkey.json" "${long_args[@]}" "${delta_args[@]}"
du -sh "$out"/drafts/* "$out"/*.json 2>/dev/null || true
stamp "all stages done (failed=$failed)"
exit $failed
