"""Makes the target's Hugging Face directory.

Real target: `specontext convert --gguf FILE --out DIR` of the relocatable bundle (the same
conversion `serve` uses; f32 weights, tokenizer.json and the chat template included). If the
bundle's converter cannot run, transformers' own GGUF loader (needs the `gguf` package) is the
fallback, saved with save_pretrained.

--tiny: a random 4-layer Llama with SmolLM2's head shape and vocabulary (the tokenizer copied
from --tokenizer-from), for checking every script end to end on a CPU in seconds.

    python3 prepare_target.py --gguf FILE --bundle BUNDLE_DIR --out DIR
    python3 prepare_target.py --tiny --tokenizer-from HF_DIR --out DIR
"""
import argparse
import os
import shutil
import subprocess
import sys


def convert_with_bundle(bundle, gguf, out):
    # --bundle is the bundle's root, or a specontext executable itself.
    exe = bundle if os.path.isfile(bundle) else os.path.join(bundle, "bin", "specontext")
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(exe))), "lib")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = lib + ":" + env.get("LD_LIBRARY_PATH", "")
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    result = subprocess.run([exe, "convert", "--gguf", gguf, "--out", tmp], env=env)
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    os.replace(tmp, out)
    return True


def convert_with_transformers(gguf, out):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # A GGUF-loaded model refuses save_pretrained (it counts as quantized); its weights are
    # already dequantized, so a plain model of the same config takes them as they are.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    tmp = out + ".tmp"
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out)


def make_tiny(tokenizer_dir, out):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=192, intermediate_size=512,
                         num_hidden_layers=6, num_attention_heads=3, num_key_value_heads=1,
                         head_dim=64, max_position_embeddings=8192, rms_norm_eps=1e-5,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         rope_theta=100000.0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tokenizer_dir, name), out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--gguf")
    parser.add_argument("--bundle", help="bundle root or a specontext executable")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--tokenizer-from")
    args = parser.parse_args()
    if os.path.exists(os.path.join(args.out, "config.json")):
        print("prepare_target: %s exists" % args.out)
        return
    if args.tiny:
        make_tiny(args.tokenizer_from, args.out)
    else:
        if not args.gguf:
            sys.exit("prepare_target: --gguf is required")
        if not (args.bundle and convert_with_bundle(args.bundle, args.gguf, args.out)):
            print("prepare_target: bundle converter unavailable or failed; using transformers")
            convert_with_transformers(args.gguf, args.out)
    print("prepare_target: wrote %s" % args.out)


if __name__ == "__main__":
    main()
