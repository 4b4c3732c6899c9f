"""Does the retrieval head find the needle? Per head input mode, at the rows that produce a
needle document's answer, the share of the needle's value tokens that the top-B selection keeps
(per KV head, averaged) and the share of the target's attention mass it captures.

Modes: "zero_hidden" (q and k from the token embedding alone, what serving runs without the
target's hidden states), "prev_hidden" (q and k with the previous position's fused target state,
as in training) and "q_prev_hidden" (only the query gets it; the K cache stays embedding-only,
so prefill needs no hidden states). Sinks (first 4 positions) and the row itself are forced in,
as the serving planners do.

    python3 needle_recall.py --target DIR --draft DIR --out needle.json
"""
import argparse
import json
import random
import time

import torch

import eagle3_draft as e3
import synthetic_docs

MODES = ("zero_hidden", "prev_hidden", "q_prev_hidden")


def needle_positions(prompt_ids, value_ids):
    """Every prompt position inside an occurrence of the value's token sequence."""
    hits, n = set(), len(value_ids)
    for start in range(len(prompt_ids) - n + 1):
        if prompt_ids[start:start + n] == value_ids:
            hits.update(range(start, start + n))
    return sorted(hits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--draft", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--kinds", default="passkey,niah_single,niah_multikey")
    parser.add_argument("--docs", type=int, default=4, help="per kind and length")
    parser.add_argument("--lengths", default="4096,8192")
    parser.add_argument("--budgets", default="256,1024,2048")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    budgets = [int(b) for b in args.budgets.split(",")]
    tokenizer = AutoTokenizer.from_pretrained(args.target)
    target = e3.load_target(args.target, device)
    layer_ids = e3.aux_layer_ids(target.config.num_hidden_layers)
    draft = e3.load_eagle3(args.draft, device)[0]
    rng = random.Random(args.seed)
    sums = {}  # (mode, length, B) -> [needle coverage sum, mass sum, count]
    t0 = time.time()
    for length in (int(x) for x in args.lengths.split(",")):
        for kind in args.kinds.split(","):
            for _ in range(args.docs):
                doc = synthetic_docs.make_document(tokenizer, kind, length, rng)
                value_ids = tokenizer.encode(doc["answer"], add_special_tokens=False)
                needle = needle_positions(doc["prompt_ids"], value_ids)
                if not needle:
                    value_ids = tokenizer.encode(" " + doc["answer"], add_special_tokens=False)
                    needle = needle_positions(doc["prompt_ids"], value_ids)
                ids = torch.tensor([doc["ids"]], device=device)
                s = ids.shape[1]
                rows = torch.arange(len(doc["prompt_ids"]) - 1, s - 1, device=device)
                needle_t = torch.tensor(needle, device=device)
                with torch.no_grad():
                    _, fused, hs = e3.target_forward(target, ids, layer_ids, want_all=True)
                    p_target = e3.target_layer_attention(target, hs, rows)  # [L, nh, R, S]
                    del hs
                    embeds = target.model.embed_tokens(ids).float()
                    cos, sin = e3.draft_rope(draft.cfg, target, s, device)
                    shifted = e3.shift_fused(fused).float()
                    a_zero, _ = draft.inputs(embeds, shifted, zero_hidden=True)
                    a_prev, _ = draft.inputs(embeds, shifted)
                    q_zero, k_zero = draft.midlayer.self_attn.qk(a_zero, cos, sin)
                    q_prev, k_prev = draft.midlayer.self_attn.qk(a_prev, cos, sin)
                    heads = {"zero_hidden": (q_zero, k_zero), "prev_hidden": (q_prev, k_prev),
                             "q_prev_hidden": (q_prev, k_zero)}
                    nh = p_target.shape[1]
                    for mode, (q, k) in heads.items():
                        for b in budgets:
                            sel = e3.select_positions(q, k, rows, b)  # [nkv, R, B]
                            covered = torch.isin(sel, needle_t).sum(-1).float() / len(needle)
                            idx = sel.repeat_interleave(nh // sel.shape[0], 0)
                            idx = idx[None].expand(p_target.shape[0], -1, -1, -1)
                            mass = p_target.gather(-1, idx).sum(-1).mean()
                            entry = sums.setdefault((mode, length, b), [0.0, 0.0, 0])
                            entry[0] += covered.mean().item()
                            entry[1] += mass.item()
                            entry[2] += 1
            print("length %d done (%.0f s)" % (length, time.time() - t0), flush=True)
    results = [{"mode": m, "length": l, "budget": b, "needle_coverage": v[0] / v[2],
                "mass": v[1] / v[2], "docs": v[2]} for (m, l, b), v in sorted(sums.items())]
    print("%-14s %6s %6s %8s %8s" % ("mode", "len", "B", "needle", "mass"))
    for r in results:
        print("%-14s %6d %6d %8.3f %8.3f" % (r["mode"], r["length"], r["budget"],
                                             r["needle_coverage"], r["mass"]))
    with open(args.out, "w") as f:
        json.dump({"kinds": args.kinds, "docs": args.docs, "seed": args.seed,
                   "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
