"""A long-context variant of the target: YaRN RoPE scaling (factor 4: 8K -> 32K) written into
config.json, optionally a short fine-tune of the attention's q/k projections on long synthetic
retrieval documents, and passkey accuracy at several lengths for the base target and the
variant(s), with transformers (greedy).

The variant directory links the base weights (no copy). The config uses transformers 5's
"rope_parameters" (rope_type yarn, factor, original_max_position_embeddings, rope_theta), which
engine/model/model_config.cc also reads. With --finetune-seconds > 0 the tuned q_proj/k_proj
tensors (bf16, ~27 MB for SmolLM2-135M) are written as a delta file; the full weights (540 MB in
f32) are too large to bring back. Apply a delta with --apply-delta.

    python3 make_long_context_target.py --target DIR --variant DIR --out-json passkey.json
        [--finetune-seconds 150] [--lengths 4096,8192,16384,32768] [--samples 5]
    python3 make_long_context_target.py --apply-delta DELTA --target DIR --variant DIR
"""
import argparse
import json
import os
import random
import shutil
import time

import torch

import synthetic_docs

TUNED = ("self_attn.q_proj.weight", "self_attn.k_proj.weight")



def write_variant(base, variant, factor):
    os.makedirs(variant, exist_ok=True)
    with open(os.path.join(base, "config.json")) as f:
        config = json.load(f)
    params = config.get("rope_parameters") or {}
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    original = config["max_position_embeddings"]
    config.pop("rope_scaling", None)
    config["rope_theta"] = theta
    config["rope_parameters"] = {"rope_type": "yarn", "factor": float(factor),
                                 "original_max_position_embeddings": original,
                                 "rope_theta": theta}
    config["max_position_embeddings"] = int(original * factor)
    with open(os.path.join(variant, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    for name in os.listdir(base):
        if name == "config.json":
            continue
        dst = os.path.join(variant, name)
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(os.path.join(base, name)), dst)


def weights_file(model_dir):
    return os.path.join(model_dir, "model.safetensors")


def apply_delta(delta, base, variant):
    """Rewrites the variant's weights as the base's with the delta's tensors replaced."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(weights_file(base))
    dtype = next(iter(tensors.values())).dtype
    for name, value in load_file(delta).items():
        tensors[name] = value.to(dtype)
    path = weights_file(variant)
    if os.path.islink(path):
        os.unlink(path)
    save_file(tensors, path + ".tmp", metadata={"format": "pt"})
    os.replace(path + ".tmp", path)


def finetune(model, tokenizer, args, log):
    device = next(model.parameters()).device
    params = [p for n, p in model.named_parameters() if n.endswith(TUNED)]
    for n, p in model.named_parameters():
        p.requires_grad_(n.endswith(TUNED))
    model.train()
    model.config.use_cache = False
    opt = torch.optim.AdamW(params, lr=args.finetune_lr, weight_decay=0.0)
    rng = random.Random(args.seed)
    start, step = time.time(), 0
    while time.time() - start < args.finetune_seconds and step < args.finetune_steps:
        doc = synthetic_docs.make_document(
            tokenizer, synthetic_docs.KINDS[step % len(synthetic_docs.KINDS)],
            rng.randint(args.finetune_len // 2, args.finetune_len), rng)
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
            log("finetune step %d %.0fs loss %.4f (answer nll %.3f)" % (
                step, time.time() - start, float(loss),
                float(nll[len(doc["prompt_ids"]) - 1:].mean())))
    model.eval()
    return {
name: p.detach().to(torch.bfloat16).cpu().contiguous()
            for name, p in model.named_parameters() if name.endswith(TUNED)}, step


@torch.no_grad()
def passkey_accuracy(model, tokenizer, lengths, samples, seed):
    device = next(model.parameters()).device
    out = {}
    for length in lengths:
        rng = random.Random(seed + length)
        correct = 0
        for _ in range(samples):
            doc = synthetic_docs.make_document(tokenizer, "passkey", length, rng)
            ids = torch.tensor([doc["prompt_ids"]], device=device)
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
    parser.add_argument("--lengths", default="4096,8192,16384,32768")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--finetune-seconds", type=float, default=0.0)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--finetune-len", type=int, default=16384)
    parser.add_argument("--finetune-lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=4321)
    args = parser.parse_args()
    if args.apply_delta:
        write_variant(args.target, args.variant, args.factor)
        apply_delta(args.apply_delta, args.target, args.variant)
        print("applied %s -> %s" % (args.apply_delta, args.variant))
        return
    from transformers import AutoTokenizer

    from eagle3_draft import load_target, log

    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lengths = [int(x) for x in args.lengths.split(",")]
    tokenizer = AutoTokenizer.from_pretrained(args.target)
    write_variant(args.target, args.variant, args.factor)
    results = {"factor": args.factor, "samples": args.samples, "lengths": lengths}

    base = load_target(args.target, device)
    results["base"] = passkey_accuracy(base, tokenizer, lengths, args.samples, args.seed)
    log("base target passkey accuracy %s" % results["base"])
    del base
    model = load_target(args.variant, device, dtype=torch.float32)
    log("yarn rope parameters: %s" % getattr(model.config, "rope_parameters", None))
    model = model.to(torch.bfloat16)
    results["yarn"] = passkey_accuracy(model, tokenizer, lengths, args.samples, args.seed)
    log("YaRN x%g passkey accuracy %s" % (args.factor, results["yarn"]))
    if args.finetune_seconds > 0:
        model = model.float()
        delta, steps = finetune(model, tokenizer, args, log)
        model = model.to(torch.bfloat16)
        results["yarn_finetuned"] = passkey_accuracy(model, tokenizer, lengths, args.samples,
                                                     args.seed)
        results["finetune_steps"] = steps
        log("YaRN + fine-tune (%d steps) passkey accuracy %s" % (steps, results["yarn_finetuned"]))
        if args.delta_out:
            from safetensors.torch import save_file

            save_file(delta, args.delta_out, metadata={"format": "pt"})
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(results, f, indent=1)
        shutil.copy(os.path.join(args.variant, "config.json"),
                    os.path.join(os.path.dirname(os.path.abspath(args.out_json)),
                                 "long_context_config.json"))


if __name__ == "__main__":
    main()
