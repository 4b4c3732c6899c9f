"""The long-context variant's build: `make_long_context_target.py --apply-delta` merges each
LoRA pair as W + scale * B A into a copy of the base weights, leaves every other tensor as it
was, and writes the stretched RoPE the delta names. Also checks that the committed factors fit
the default model's projections when it is prepared. Exits 77 (skipped) without numpy or
safetensors."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    from safetensors.numpy import load_file, save_file
except ImportError:
    print("SKIP: numpy and safetensors are needed")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "engine", "train", "make_long_context_target.py")
COMMITTED = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct-32K-lora", "lora.safetensors")


def check_merge(tmp):
    rng = np.random.default_rng(3)
    base, variant = os.path.join(tmp, "base"), os.path.join(tmp, "variant")
    os.makedirs(base)
    config = {"hidden_size": 16, "num_attention_heads": 2, "max_position_embeddings": 8192,
              "rope_theta": 100000.0}
    with open(os.path.join(base, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(base, "tokenizer.json"), "w") as f:
        f.write("{}")
    shapes = {"q_proj": (16, 16), "k_proj": (8, 16), "v_proj": (8, 16), "o_proj": (16, 16)}
    tensors = {"model.embed_tokens.weight": rng.standard_normal((32, 16), dtype=np.float32)}
    factors = {}
    for layer in range(2):
        for proj, (out, inp) in shapes.items():
            name = "model.layers.%d.self_attn.%s" % (layer, proj)
            tensors[name + ".weight"] = rng.standard_normal((out, inp), dtype=np.float32)
            factors[name + ".lora_a"] = rng.standard_normal((4, inp)).astype(np.float16)
            factors[name + ".lora_b"] = rng.standard_normal((out, 4)).astype(np.float16)
    save_file(tensors, os.path.join(base, "model.safetensors"))
    delta = os.path.join(tmp, "lora.safetensors")
    save_file(factors, delta, metadata={"lora_scale": "2.0", "rope": "yarn", "factor": "4.0"})
    subprocess.run([sys.executable, SCRIPT, "--apply-delta", delta, "--target", base,
                    "--variant", variant], check=True)
    merged = load_file(os.path.join(variant, "model.safetensors"))
    assert sorted(merged) == sorted(tensors)
    np.testing.assert_array_equal(merged["model.embed_tokens.weight"],
                                  tensors["model.embed_tokens.weight"])
    for name in factors:
        if name.endswith(".lora_a"):
            stem = name[:-len(".lora_a")]
            want = tensors[stem + ".weight"] + 2.0 * (
                factors[stem + ".lora_b"].astype(np.float32) @ factors[name].astype(np.float32))
            np.testing.assert_allclose(merged[stem + ".weight"], want, rtol=1e-6, atol=1e-5)
    with open(os.path.join(variant, "config.json")) as f:
        written = json.load(f)
    assert written["max_position_embeddings"] == 32768, written
    assert written["rope_parameters"] == {
        "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192,
        "rope_theta": 100000.0}, written
    assert os.path.islink(os.path.join(variant, "tokenizer.json"))
    assert not os.path.islink(os.path.join(variant, "model.safetensors"))


def check_committed_factors():
    cache = os.environ.get("SPECONTEXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "specontext")
    weights = os.path.join(cache, "models", "SmolLM2-135M-Instruct", "model.safetensors")
    factors = load_file(COMMITTED)
    assert len(factors) == 30 * 4 * 2, len(factors)
    if not os.path.exists(weights):
        print("default model not prepared: shapes of the committed factors not checked")
        return
    base = load_file(weights)
    for name, a in factors.items():
        if name.endswith(".lora_a"):
            stem = name[:-len(".lora_a")]
            w, b = base[stem + ".weight"], factors[stem + ".lora_b"]
            assert a.shape[1] == w.shape[1] and b.shape[0] == w.shape[0], (name, w.shape)
            assert b.shape[1] == a.shape[0]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        check_merge(tmp)
    check_committed_factors()
    print("lora merge: ok")
