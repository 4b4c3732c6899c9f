#!/usr/bin/env bash
# One device call: the target's HF directory, the training data, the plain and the
# attention-aligned EAGLE-3 drafts, their attention recall, and the long-context variant.
# Drafts, logs and JSON go to $OUT; the large intermediates (target weights, data, checkpoints)
# to WORK_DIR. Every stage is skipped when its output exists, so a cut-off run resumes.
#   OUT=... engine/train/device_run.sh GGUF_FILE BUNDLE_DIR [WORK_DIR]
#   OUT=... TINY=1 engine/train/device_run.sh - - WORK_DIR    (CPU check with a random tiny target;
#       needs TOKENIZER_FROM=an HF directory with SmolLM2's tokenizer.json)
# Knobs: TRAIN_SECONDS (per draft, default 150), FINETUNE_SECONDS (long-context LoRA, default 0),
# LONG_ROPE (yarn or theta, default yarn), STAGES (the stage names to run, default all but the
# long_draft_* ones), DATA_ARGS / TRAIN_ARGS (extra arguments of make_data.py / train_draft.py),
# LONG_DELTA (LoRA factors of the long-context variant for the long_draft_* stages; default the
# committed ones), LONG_DRAFT_SECONDS (default 240), LONG_DATA_ARGS / LONG_TRAIN_ARGS.
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
default_stages="prepare_target make_data train_plain train_align eval_recall needle_recall long_context"
stages=" ${STAGES:-$default_stages} "
stage() {  # stage NAME DONE_FILE COMMAND...
  local name=$1 done_file=$2
  shift 2
  if [[ $stages != *" $name "* ]]; then
    return
  fi
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
  needle_args=(--docs 1 --lengths 1000 --budgets 64,256)
  long_args=(--lengths 700,1400 --samples 1 --finetune-len 900 --finetune-steps 3)
  long_data_args=(--sequences 4 --new-tokens 16 --batch 4 --long-docs 4 --long-min 1300
                  --long-max 2000)
  long_train_args=(--steps 6 --short-batch 2 --align-rows 16 --ckpt-every 5 --log-every 2)
  long_eval_args=(--docs 2 --min-len 1500 --max-len 2000 --rows 8 --budgets 16,64,256)
  long_needle_args=(--docs 1 --lengths 1800 --budgets 64,256)
  long_max=2000
  long_delta=$out/long_context_delta.safetensors  # the tiny target's own fine-tune
  prepare=(--tiny --tokenizer-from "${TOKENIZER_FROM:?}")
else
  train_seconds=${TRAIN_SECONDS:-150}
  data_args=()
  train_args=()
  eval_args=()
  needle_args=()
  long_args=()
  long_data_args=(--sequences 96 --long-docs 200 --long-min 8192 --long-max 32768)
  long_train_args=(--long-share 0.75 --hidden-weight 0.8 --lr 2e-4)
  long_eval_args=(--docs 8 --min-len 16384 --max-len 32768 --rows 32 --budgets 256,1024,2048)
  long_needle_args=(--lengths 16384,32768 --docs 3 --budgets 1024,2048)
  long_max=32768
  long_delta=$here/../../models/SmolLM2-135M-Instruct-32K-lora/lora.safetensors
  prepare=(--gguf "$gguf" --bundle "$bundle")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader |
    tee "$out/gpu.txt" || true
fi
$py -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.cuda.is_available())' | tee "$out/versions.txt"

target=$work/target
stage prepare_target "$target/config.json" \
  $py "$here/prepare_target.py" --out "$target" "${prepare[@]}"
# DATA_ARGS, TRAIN_ARGS and LONG_*_ARGS stay unquoted: they split into words on purpose.
stage make_data "$work/data.pt" \
  $py "$here/make_data.py" --target "$target" --out "$work/data.pt" "${data_args[@]}" \
  ${DATA_ARGS:-}
for variant in plain align; do
  flags=()
  [[ $variant == align ]] && flags=(--align-attention)
  stage "train_$variant" "$out/drafts/eagle3-$variant/model.safetensors" \
    $py "$here/train_draft.py" --target "$target" --data "$work/data.pt" \
    --out "$out/drafts/eagle3-$variant" --work "$work/ckpt-$variant" \
    --max-seconds "$train_seconds" --retrieval-out "$out/drafts/retrieval-$variant" \
    "${flags[@]}" "${train_args[@]}" ${TRAIN_ARGS:-}
  if [[ -f $work/ckpt-$variant/train_summary.json ]]; then
    cp "$work/ckpt-$variant/train_summary.json" "$out/drafts/train_summary_$variant.json"
  fi
done
recall_drafts=()
for variant in plain align; do
  [[ -e $out/drafts/eagle3-$variant/config.json ]] &&
    recall_drafts+=(--draft "$variant=$out/drafts/eagle3-$variant")
done
stage eval_recall "$out/recall.json" \
  $py "$here/eval_recall.py" --target "$target" "${recall_drafts[@]}" --out "$out/recall.json" \
  "${eval_args[@]}"
stage needle_recall "$out/needle.json" \
  $py "$here/needle_recall.py" --target "$target" --draft "$out/drafts/eagle3-align" \
  --out "$out/needle.json" "${needle_args[@]}"
delta_args=()
if [[ ${FINETUNE_SECONDS:-0} != 0 ]]; then
  delta_args=(--finetune-seconds "$FINETUNE_SECONDS" --delta-out "$out/long_context_delta.safetensors")
fi
stage long_context "$out/passkey.json" \
  $py "$here/make_long_context_target.py" --target "$target" --variant "$work/target-32k" \
  --rope "${LONG_ROPE:-yarn}" --out-json "$out/passkey.json" "${long_args[@]}" "${delta_args[@]}"

# The long-context variant's retrieval head: the aligned draft, trained further on 8K-32K
# documents through the variant (its YaRN RoPE), saved retrieval-only.
long_target=$work/target-32k-lora
long_draft=$out/drafts/retrieval-32k
stage long_draft_target "$long_target/config.json" \
  $py "$here/make_long_context_target.py" --target "$target" --variant "$long_target" \
  --apply-delta "${LONG_DELTA:-$long_delta}"
stage long_draft_data "$work/data-32k.pt" \
  $py "$here/make_data.py" --target "$long_target" --out "$work/data-32k.pt" \
  "${long_data_args[@]}" ${LONG_DATA_ARGS:-}
stage long_draft_train "$long_draft/model.safetensors" \
  $py "$here/train_draft.py" --target "$long_target" --data "$work/data-32k.pt" \
  --out "$long_draft" --work "$work/ckpt-long" --align-attention --retrieval-only \
  --init-from "$out/drafts/eagle3-align" --long-max "$long_max" \
  --max-seconds "${LONG_DRAFT_SECONDS:-240}" "${long_train_args[@]}" ${LONG_TRAIN_ARGS:-}
stage long_draft_recall "$out/recall-32k.json" \
  $py "$here/eval_recall.py" --target "$long_target" --draft "align=$out/drafts/eagle3-align" \
  --draft "long=$long_draft" --out "$out/recall-32k.json" "${long_eval_args[@]}"
stage long_draft_needle "$out/needle-32k.json" \
  $py "$here/needle_recall.py" --target "$long_target" --draft "$long_draft" \
  --out "$out/needle-32k.json" "${long_needle_args[@]}"
du -sh "$out"/drafts/* "$out"/*.json 2>/dev/null || true
stamp "all stages done (failed=$failed)"
exit $failed
