#!/usr/bin/env python3
"""Compares `specontext bench` with Hugging Face transformers on the Llama-3.1-8B shape.

Runs our bench first (its own process, so the GPU is free for transformers afterwards), then
transformers with attn_implementation eager and sdpa on a randomly initialised bf16
LlamaForCausalLM of the same shape, at the same points:
  decode: one step for R sequences against a DynamicCache pre-filled with S random positions
          (the cache tensors are written directly; no 32K prefill is run);
  prefill: one forward pass over N tokens, logits for the last position only.
Prints a table (ours, HF eager, HF sdpa, roofline, ratios) and writes everything as JSON.

  python3 engine/bench/hf_compare.py --specontext bundle/bin/specontext --out results.json
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

BATCHES = [1, 4, 32]
CONTEXTS = [2048, 8192, 32768]
PREFILL = [8192, 32768]


def run_bench(binary, args, model="llama-3.1-8b"):
    cmd = [binary, "bench", "--model", "preset:" + model, "--json"] + args
    print("running:", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr, flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ours(binary, batches, contexts, prefill, steps):
    """Prefill, then each batch size, in separate processes: one failing point loses no other."""
    merged = None
    runs = [["--prefill-len", ",".join(map(str, prefill))]]
    runs += [["--batch", str(r), "--context", ",".join(map(str, contexts)), "--steps", str(steps)]
             for r in batches]
    for args in runs:
        report = run_bench(binary, args)
        if report is None:
            continue
        if merged is None:
            merged = report
        else:
            merged["decode"] += report["decode"]
            merged["prefill"] += report["prefill"]
            merged["peak_gpu_memory"] = max(merged["peak_gpu_memory"], report["peak_gpu_memory"])
    return merged


# The presets' shapes (engine/model/model_presets.cc), as transformers configs.
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0}
SHAPES = {
    "llama-3.1-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=128, rope_scaling=dict(LLAMA3_ROPE,
                                                         original_max_position_embeddings=8192)),
    "llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                         num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                         head_dim=64, tie_word_embeddings=True,
                         rope_scaling=dict(LLAMA3_ROPE, factor=32.0,
                                           original_max_position_embeddings=8192)),
}


def build_hf_model(preset="llama-3.1-8b"):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5,
                         **SHAPES[preset])
    torch.set_default_dtype(torch.bfloat16)
    # Built on the GPU: random init there takes seconds, not the minutes it takes on the CPU.
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    return model.eval(), config


def set_attention(model, impl):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(impl)
    else:
        model.config._attn_implementation = impl


def timed(fn, warmup, repeat):
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def hf_decode(model, config, batch, context, steps):
    import torch
    from transformers import DynamicCache

    heads, dim = config.num_key_value_heads, config.head_dim
    kv_bytes = 2 * config.num_hidden_layers * batch * context * heads * dim * 2
    free, _ = torch.cuda.mem_get_info()
    if kv_bytes * 1.1 + (2 << 30) > free:
        return None, f"KV of {kv_bytes >> 20} MiB does not fit in {free >> 20} MiB free"
    cache = DynamicCache()
    gen = torch.Generator(device="cuda").manual_seed(0)
    for layer in range(config.num_hidden_layers):
        k = torch.rand(batch, heads, context, dim, device="cuda", dtype=torch.bfloat16,
                       generator=gen)
        v = torch.rand(batch, heads, context, dim, device="cuda", dtype=torch.bfloat16,
                       generator=gen)
        cache.update(k * 2 - 1, v * 2 - 1, layer)
    ids = torch.randint(0, config.vocab_size, (batch, 1), device="cuda")
    pos = torch.full((batch, 1), context, device="cuda", dtype=torch.long)

    def step():
        with torch.no_grad():
            model(input_ids=ids, position_ids=pos, past_key_values=cache, use_cache=True,
                  logits_to_keep=1)
        cache.crop(-1)  # drop the new token: every timed step sees the same S positions

    try:
        ms = timed(step, 2, steps)
    except torch.OutOfMemoryError as e:
        return None, f"out of memory: {str(e).splitlines()[0]}"
    finally:
        del cache
        torch.cuda.empty_cache()
    return ms, None


def hf_prefill(model, config, tokens):
    import torch

    ids = torch.randint(0, config.vocab_size, (1, tokens), device="cuda")

    def run():
        with torch.no_grad():
            model(input_ids=ids, use_cache=False, logits_to_keep=1)

    try:
        return timed(run, 1, 3), None
    except torch.OutOfMemoryError as e:
        return None, f"out of memory: {str(e).splitlines()[0]}"
    finally:
        torch.cuda.empty_cache()


def fmt(v, spec="8.2f"):
    return format(v, spec) if isinstance(v, (int, float)) else f"{'-':>8}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specontext", required=True, help="path to the specontext binary")
    ap.add_argument("--out", help="write all results as JSON here")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args()

    ours = run_ours(args.specontext, BATCHES, CONTEXTS, PREFILL, 20)
    results = {"ours": ours, "hf": {}}
    if not args.skip_hf:
        import torch

        model, config = build_hf_model()
        for impl in ("eager", "sdpa"):
            set_attention(model, impl)
            hf = {"decode": [], "prefill": []}
            for r in BATCHES:
                for s in CONTEXTS:
                    ms, why = hf_decode(model, config, r, s, args.steps)
                    hf["decode"].append({"batch": r, "context": s, "step_ms": ms, "skipped": why})
                    print(f"HF {impl} decode R={r} S={s}: {ms if ms else why}", flush=True)
            for n in PREFILL:
                ms, why = hf_prefill(model, config, n)
                hf["prefill"].append({"tokens": n, "ms": ms, "skipped": why})
                print(f"HF {impl} prefill {n}: {ms if ms else why}", flush=True)
            results["hf"][impl] = hf
        results["torch"] = torch.__version__
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)

    def hf_point(impl, kind, **key):
        for p in results["hf"].get(impl, {}).get(kind, []):
            if all(p[k] == v for k, v in key.items()):
                return p.get("step_ms", p.get("ms"))
        return None

    print("\ndecode step, ms (Llama-3.1-8B shape, bf16)")
    # ours: the step as serving runs it (greedy token picked on the GPU, a summary per row on
    # the host); whole rows: the same step copying every fp32 logit to the host.
    print(f"{'R':>3} {'S':>6} {'ours':>8} {'whole':>8} {'eager':>8} {'sdpa':>8} {'roofline':>8} "
          f"{'ours/roof':>9} {'sdpa/ours':>9} {'eager/ours':>10}")
    for p in (ours or {}).get("decode", []):
        r, s = p["batch"], p["context"]
        mine = p.get("step_ms")
        eager = hf_point("eager", "decode", batch=r, context=s)
        sdpa = hf_point("sdpa", "decode", batch=r, context=s)
        ratio = lambda a, b: a / b if a and b else None  # noqa: E731
        whole = p.get("whole_rows_step_ms")
        print(f"{r:>3} {s:>6} {fmt(mine)} {fmt(whole)} {fmt(eager)} {fmt(sdpa)} "
              f"{fmt(p['roofline_ms'])} "
              f"{fmt(ratio(mine, p['roofline_ms']), '9.2f')} {fmt(ratio(sdpa, mine), '9.2f')} "
              f"{fmt(ratio(eager, mine), '10.2f')}" + ("" if p["ran"] else "  " + p["skipped"]))
    print("\nprefill, ms (ours TFLOP/s)")
    for p in (ours or {}).get("prefill", []):
        n = p["tokens"]
        print(f"{n:>6} ours {fmt(p['ms'], '9.1f')} ({p['tflops']:.0f} TFLOP/s)  "
              f"eager {fmt(hf_point('eager', 'prefill', tokens=n), '9.1f')}  "
              f"sdpa {fmt(hf_point('sdpa', 'prefill', tokens=n), '9.1f')}")
    return 0 if ours else 1


if __name__ == "__main__":
    sys.exit(main())
