"""A long-context variant of the target: its RoPE stretched 4x (8K -> 32K) in config.json, by
YaRN or by a larger base (NTK-aware theta), optionally a short LoRA fine-tune of the
attention's q/k/v/o projections on long synthetic retrieval documents, and passkey accuracy at
several lengths for the base target and the variant, with transformers (greedy).

The variant directory links the base weights (no copy). The config uses transformers 5's
"rope_parameters", which engine/model/model_config.cc also reads. With --finetune-seconds > 0
the LoRA factors (f16, a few MB) are written as a delta file; --apply-delta merges them into a
copy of the base weights (numpy only, no torch), as the set-up does on a CPU machine.

    python3 make_long_context_target.py --target DIR --variant DIR --out-json passkey.json
        [--rope yarn|theta] [--finetune-seconds 150] [--lengths 4096,8192,16384,32768]
    python3 make_long_context_target.py --apply-delta DELTA --target DIR --variant DIR
        (the RoPE stretch is read from the delta)
"""
import argparse
import json
import os
import random
import shutil
import time

import synthetic_docs

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def rope_parameters(config, kind, factor):
    """The stretched RoPE: YaRN, or the base raised as NTK-aware scaling does (theta *
    factor^(d / (d - 2))), so the lowest frequency covers factor times the positions."""
    params = config.get("rope_parameters") or {}
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    original = config["max_position_embeddings"]
    if kind == "yarn":
        return theta, {"rope_type": "yarn", "factor": float(factor),
                       "original_max_position_embeddings": original, "rope_theta": theta}
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    stretched = theta * factor ** (head_dim / (head_dim - 2))
    return stretched, {"rope_type": "default", "rope_theta": stretched}


def write_variant(base, variant, factor, kind, link_weights=True):
    os.makedirs(variant, exist_ok=True)
    with open(os.path.join(base, "config.json")) as f:
        config = json.load(f)
    original = config["max_position_embeddings"]
    config.pop("rope_scaling", None)
    config["rope_theta"], config["rope_parameters"] = rope_parameters(config, kind, factor)
    config["max_position_embeddings"] = int(original * factor)
    with open(os.path.join(variant, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in os.listdir(base):
        if name == "config.json" or (name == "model.safetensors" and not link_weights):
            continue
        dst = os.path.join(variant, name)
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(os.path.join(base, name)), dst)


def weights_file(model_dir):
    return os.path.join(model_dir, "model.safetensors")


def apply_delta(delta, base, variant):
    """Writes the variant's weights: the base's with each LoRA pair merged, W + scale * B A."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    tensors = load_file(weights_file(base))
    with safe_open(delta, "np") as f:
        scale = float(f.metadata()["lora_scale"])
        factors = {name: f.get_tensor(name) for name in f.keys()}
    for name in factors:
        if not name.endswith(".lora_a"):
            continue
        weight = name[:-len(".lora_a")] + ".weight"
        a = factors[name].astype(np.float32)
        b = factors[name[:-len(".lora_a")] + ".lora_b"].astype(np.float32)
        merged = tensors[weight].astype(np.float32) + scale * (b @ a)
        tensors[weight] = merged.astype(tensors[weight].dtype)
    path = weights_file(variant)
    if os.path.lexists(path):
        os.unlink(path)
    save_file(tensors, path + ".tmp", metadata={"format": "pt"})
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)


def add_lora(model, rank, alpha):
    """Wraps the attention projections of every layer with trainable low-rank updates."""
    import torch

    class LoraLinear(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base
            self.lora_a = torch.nn.Parameter(
                torch.randn(rank, base.in_features, device=base.weight.device) /
                base.in_features ** 0.5)
            # B starts at zero, so the wrapped model starts as the unwrapped one.
            self.lora_b = torch.nn.Parameter(
                torch.zeros(base.out_features, rank, device=base.weight.device))
            self.scale = alpha / rank

        def forward(self, x):
            return self.base(x) + (x @ self.lora_a.t().to(x.dtype)) @ \
                self.lora_b.t().to(x.dtype) * self.scale

    wrapped = {}
    for i, layer in enumerate(model.model.layers):
        for proj in LORA_TARGETS:
            module = LoraLinear(getattr(layer.self_attn, proj))
            setattr(layer.self_attn, proj, module)
            wrapped["model.layers.%d.self_attn.%s" % (i, proj)] = module
    return wrapped


def finetune(model, tokenizer, args, log):
    """LoRA on long documents; returns the factors (f16) and the steps taken. The model keeps
    the merged weights afterwards."""
    import torch

    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = add_lora(model, args.lora_rank, args.lora_alpha)
    params = [p for m in wrapped.values() for p in (m.lora_a, m.lora_b)]
    model.train()
    model.config.use_cache = False
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    opt = torch.optim.AdamW(params, lr=args.finetune_lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    start, step = time.time(), 0
    while time.time() - start < args.finetune_seconds and step < args.finetune_steps:
        doc = synthetic_docs.make_document(
            tokenizer, synthetic_docs.KINDS[step % len(synthetic_docs.KINDS)],
            rng.randint(args.finetune_len // 4, args.finetune_len), rng)
        ids = torch.tensor([doc["ids"]], device=device)
        # Weight the answer 10x: it is the only part that needs long-range retrieval.
        weights = torch.ones(ids.shape[1] - 1, device=device)
        weights[len(doc["prompt_ids"]) - 1:] = 10.0
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            logits = model(input_ids=ids).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
        loss = (nll * weights).sum() / weights.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            log("finetune step %d %.0fs len %d loss %.4f (answer nll %.3f)" % (
                step, time.time() - start, ids.shape[1], float(loss),
                float(nll[len(doc["prompt_ids"]) - 1:].mean())))
    model.gradient_checkpointing_disable()
    model.eval()
    factors = {}
    with torch.no_grad():
        for name, m in wrapped.items():
            factors[name + ".lora_a"] = m.lora_a.detach().to(torch.float16).cpu().contiguous()
            factors[name + ".lora_b"] = m.lora_b.detach().to(torch.float16).cpu().contiguous()
            m.base.weight += (m.lora_b @ m.lora_a * m.scale).to(m.base.weight.dtype)
    for i, layer in enumerate(model.model.layers):
        for proj in LORA_TARGETS:
            setattr(layer.self_attn, proj, getattr(layer.self_attn, proj).base)
    return factors, step


def passkey_accuracy(model, tokenizer, lengths, samples, seed):
    import torch

    device = next(model.parameters()).device
    out = {}
    for length in lengths:
        rng = random.Random(seed + length)
        correct = 0
        for _ in range(samples):
            doc = synthetic_docs.make_document(tokenizer, "passkey", length, rng)
            ids = torch.tensor([doc["prompt_ids"]], device=device)
            with torch.no_grad():
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     do_sample=False, max_new_tokens=8,
                                     pad_token_id=tokenizer.eos_token_id)
            text = tokenizer.decode(gen[0, ids.shape[1]:])
            correct += doc["answer"] in text
        out[str(length)] = correct / samples
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--out-json")
    parser.add_argument("--delta-out")
    parser.add_argument("--apply-delta")
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--rope", choices=("yarn", "theta"), default="yarn")
    parser.add_argument("--lengths", default="4096,8192,16384,32768")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--finetune-seconds", type=float, default=0.0)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--finetune-len", type=int, default=32768)
    parser.add_argument("--finetune-lr", type=float, default=2e-4)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32.0)
    parser.add_argument("--seed", type=int, default=4321)
    args = parser.parse_args()
    if args.apply_delta:
        from safetensors import safe_open

        with safe_open(args.apply_delta, "np") as f:
            meta = f.metadata()  # the stretch the factors were trained for
        write_variant(args.target, args.variant, float(meta["factor"]), meta["rope"],
                      link_weights=False)
        apply_delta(args.apply_delta, args.target, args.variant)
        print("applied %s -> %s" % (args.apply_delta, args.variant))
        return
    import torch
    from transformers import AutoTokenizer

    from eagle3_draft import load_target, log

    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lengths = [int(x) for x in args.lengths.split(",")]
    tokenizer = AutoTokenizer.from_pretrained(args.target)
    write_variant(args.target, args.variant, args.factor, args.rope)
    results = {"factor": args.factor, "rope": args.rope, "samples": args.samples,
               "lengths": lengths}

    base = load_target(args.target, device)
    results["base"] = passkey_accuracy(base, tokenizer, lengths, args.samples, args.seed)
    log("base target passkey accuracy %s" % results["base"])
    del base
    model = load_target(args.variant, device, dtype=torch.float32)
    log("rope parameters: %s" % getattr(model.config, "rope_parameters", None))
    model = model.to(torch.bfloat16)
    results["stretched"] = passkey_accuracy(model, tokenizer, lengths, args.samples, args.seed)
    log("%s x%g passkey accuracy %s" % (args.rope, args.factor, results["stretched"]))
    if args.finetune_seconds > 0:
        model = model.float()
        factors, steps = finetune(model, tokenizer, args, log)
        model = model.to(torch.bfloat16)
        results["finetuned"] = passkey_accuracy(model, tokenizer, lengths, args.samples, args.seed)
        results["finetune_steps"] = steps
        log("%s + LoRA (%d steps) passkey accuracy %s" % (args.rope, steps, results["finetuned"]))
        if args.delta_out:
            from safetensors.torch import save_file

            save_file(factors, args.delta_out, metadata={
                "format": "pt", "lora_scale": str(args.lora_alpha / args.lora_rank),
                "rope": args.rope, "factor": str(args.factor)})
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(results, f, indent=1)
        shutil.copy(os.path.join(args.variant, "config.json"),
                    os.path.join(os.path.dirname(os.path.abspath(args.out_json)),
                                 "long_context_config.json"))


if __name__ == "__main__":
    main()
