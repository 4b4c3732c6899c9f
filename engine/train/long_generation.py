"""Does the selection memory crowd a long generation?

With --sparse-memory-decay D each position ranks by the larger of this step's head weight and D
times its last ranking weight, so what the head found stays selected for a while. Over a long
generation those remembered positions could fill the B slots and push out what the head finds
now. This script generates densely from the daemon's own task prompts (`specontext eval ...
--write-tasks tasks.jsonl --write-only`) with Hugging Face transformers, EOS suppressed, and at
every step builds the retrieval head's list once per decay, as the daemon would, without letting
the lists change the generation. Every --every steps it records, per decay:
  head share  the share of this step's head weights (group max, summed over positions) the list
              holds: 1.0 at D = 0's best, lower when remembered positions crowd the list
  recall      the share of the target's attention mass (mean over layers and query heads) the
              list holds: the paper's metric
  overlap     the share of the list that D = 0's list also holds
and prints their means over windows of --report generated tokens.

    python3 long_generation.py --target DIR --draft DIR --tasks tasks.jsonl --decays 0,0.995 \
        --tokens 16384 --out long.json
"""
import argparse
import json
import time

import torch
import eagle3_draft as e3
from oracle_accuracy import HeadState, Memory, keep_mask, load_target
from transformers import DynamicCache


class Probe:
    """The lists a measured step scores the target's attention against."""

    def __init__(self):
        self.masks = None  # {decay: bool [nkv, S]}
        self.captured = None  # {decay: [per-layer captured mass]}


def make_attention(probe, sdpa):
    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        if query.shape[2] == 1 and probe.masks is not None:
            b, nh, _, d = query.shape
            nkv = key.shape[1]
            scale = scaling if scaling is not None else module.scaling
            q = query.view(b, nkv, nh // nkv, d).float()
            p = (torch.einsum("bkgd,bksd->bkgs", q, key.float()) * scale).softmax(-1)[0]
            for decay, mask in probe.masks.items():
                probe.captured[decay].append((p * mask[:, None, :]).sum(-1).mean())
        return sdpa(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                    **kwargs)

    return attention


@torch.no_grad()
def generate(model, head, probe, ids, args, stop_ids, generator):
    """Per measured step: {"position", decay: {"share", "recall", "overlap"}}."""
    cache = DynamicCache()
    out = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
                output_hidden_states=True)
    head.start(ids, out.hidden_states)
    head.reset()
    memories = {d: Memory(d) for d in args.decays}
    steps, start = [], time.time()
    for step in range(args.tokens):
        logits = out.logits[0, -1].float()
        logits[list(stop_ids)] = float("-inf")
        if args.temperature > 0:
            probs = (logits / args.temperature).softmax(-1)
            token = torch.multinomial(probs, 1, generator=generator).view(1, 1)
        else:
            token = logits.argmax().view(1, 1)
        position = cache.get_seq_length()
        weights = head.weights(token, position)
        masks = {d: keep_mask(m.rank(weights), args.budget, args.sinks)
                 for d, m in memories.items()}
        measured = step % args.every == 0 and position + 1 > args.budget
        if measured:
            probe.masks, probe.captured = masks, {d: [] for d in args.decays}
        out = model(token, past_key_values=cache, use_cache=True, logits_to_keep=1,
                    output_hidden_states=True)
        probe.masks = None
        head.last = head.fused(out.hidden_states)
        if measured:
            base = masks[args.decays[0]]
            row = {"position": position}
            for d, mask in masks.items():
                row[d] = {"share": float(((weights * mask).sum(-1) / weights.sum(-1)).mean()),
                          "recall": float(torch.stack(probe.captured[d]).mean()),
                          "overlap": float((mask & base).sum() / mask.sum())}
            steps.append(row)
        if time.time() - start > args.time_limit:
            break
    return steps


def windows(steps, prompt, report, decays):
    rows = []
    for lo in range(0, max(s["position"] for s in steps) - prompt + 1, report):
        chunk = [s for s in steps if lo <= s["position"] - prompt < lo + report]
        if not chunk:
            continue
        row = {"generated": f"{lo}-{lo + report}"}
        for d in decays:
            for key in ("share", "recall", "overlap"):
                row[f"{key} D={d}"] = round(sum(s[d][key] for s in chunk) / len(chunk), 4)
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--draft", required=True, help="the retrieval head (an EAGLE-3 directory)")
    ap.add_argument("--tasks", required=True, help="prompts: `specontext eval --write-tasks`")
    ap.add_argument("--prompts", type=int, default=1, help="how many of the tasks' prompts")
    ap.add_argument("--tokens", type=int, default=16384, help="tokens generated per prompt")
    ap.add_argument("--decays", default="0,0.995", help="the first is the others' reference")
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--sinks", type=int, default=4, help="as --sparse-sinks")
    ap.add_argument("--every", type=int, default=8, help="measure every N-th step")
    ap.add_argument("--report", type=int, default=1024, help="generated tokens per window")
    ap.add_argument("--temperature", type=float, default=0.7, help="0: greedy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=1e9, help="seconds per prompt")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    args.decays = [float(d) for d in args.decays.split(",")]

    probe = Probe()
    tokenizer, model, stop_ids = load_target(args.target, lambda sdpa: make_attention(probe, sdpa))
    draft = e3.load_eagle3(args.draft, model.device)[0]
    tasks = [json.loads(line) for line in open(args.tasks)][:args.prompts]
    head = HeadState(draft, model, e3.aux_layer_ids(model.config.num_hidden_layers),
                     max(t["prompt_tokens"] for t in tasks) + args.tokens + 1)
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    report = []
    for task in tasks:
        ids = tokenizer(task["prompt"], add_special_tokens=False, return_tensors="pt").input_ids
        start = time.time()
        steps = generate(model, head, probe, ids.cuda(), args, stop_ids, generator)
        table = windows(steps, ids.shape[1], args.report, args.decays)
        report.append({"task": task["task"], "prompt_tokens": ids.shape[1], "windows": table})
        print(f"{task['task']} at {ids.shape[1]} tokens, {time.time() - start:.0f} s")
        for row in table:
            print("  " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        json.dump({"args": vars(args), "report": report}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
