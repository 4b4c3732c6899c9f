"""How much of the target's attention mass each draft's retrieval head selects.

For held-out long synthetic documents (a seed the training data never used), for the last
--rows query positions of each document: the head's attention per query head (softmax(q·kᵀ/√d),
RoPE as the draft's config), the max over the query heads of each KV group, the top-B keys per KV
head; recall = the target's attention mass on those keys, per layer and query head, averaged over
layers, heads, rows and documents. Two head modes: "zero_hidden" (q and k from the embedding half
only) and "prev_hidden" (the previous token's fused target state in the hidden half, as in
training). Each is measured as the paper selects (top-B of the head alone) and as the daemon
serves (--sinks first keys and the row itself forced in, then the head's top-B). A sinks +
recent-window selection of the same size is the floor; the top-B of the target's own attention
averaged over layers ("oracle") the ceiling of one list per KV head; with --oracle-groups, the
same ceiling when each run of consecutive layers may have a list of its own. Last, how well
per-row signals from the head alone (its selected mass, ...) find the rows the served selection
captures least: what a dense fallback would have to detect.

    python3 eval_recall.py --target DIR --draft NAME=DIR [--draft NAME=DIR ...] --out recall.json
"""
import argparse
import json
import random
import time

import torch

import eagle3_draft as e3
import synthetic_docs


def captured_mass(p_target, select):
    """p_target [L, nh, R, S], select [nkv, R, B] indices -> mean captured mass per layer [L]."""
    nh, nkv = p_target.shape[1], select.shape[0]
    idx = select.repeat_interleave(nh // nkv, 0)  # [nh, R, B]
    idx = idx[None].expand(p_target.shape[0], -1, -1, -1)
    return p_target.gather(-1, idx).sum(-1).mean((1, 2))


def oracle_select(p_target, nkv, budget):
    """[nkv, R, B]: the top-B keys of the target's own attention, averaged over layers and each
    KV group's query heads. Recall is linear in the selection, so no shared list per KV head
    captures more on average: the ceiling any retrieval head can reach under the paper's rule."""
    mean = p_target.mean(0)  # [nh, R, S]
    mean = mean.view(nkv, mean.shape[0] // nkv, *mean.shape[1:]).mean(1)
    return mean.topk(min(budget, mean.shape[-1]), -1).indices


def grouped_oracle_mass(p_target, nkv, budget, groups):
    """[L]: the oracle's captured mass when each of `groups` runs of consecutive layers has a
    list of its own (groups = L: every layer its own top-B, the ceiling of any B-position
    sparse attention that keeps the same keys for a KV group's query heads)."""
    layers = p_target.shape[0]
    out = torch.empty(layers, device=p_target.device)
    for g in range(groups):
        lo, hi = g * layers // groups, (g + 1) * layers // groups
        part = p_target[lo:hi]
        out[lo:hi] = captured_mass(part, oracle_select(part, nkv, budget))
    return out


def row_recall(p_target, select, first_layer=0):
    """[R]: each row's captured mass, averaged over layers [first_layer, L) and query heads."""
    part = p_target[first_layer:]
    nh, nkv = part.shape[1], select.shape[0]
    idx = select.repeat_interleave(nh // nkv, 0)[None].expand(part.shape[0], -1, -1, -1)
    return part.gather(-1, idx).sum(-1).mean((0, 1))


def head_signals(probs, select):
    """Per-row dense-fallback signals from the head alone ([R] each): its selected mass as the
    planners compute it (the max over each GQA group, the share kept, mean over KV heads), the
    least of those over KV heads, and the least any single query head keeps."""
    nh, nkv = probs.shape[0], select.shape[0]
    grouped = probs.view(nkv, nh // nkv, *probs.shape[1:]).amax(1)
    kept = grouped.gather(-1, select).sum(-1) / grouped.sum(-1)  # [nkv, R]
    per_query = probs.gather(-1, select.repeat_interleave(nh // nkv, 0)).sum(-1)  # [nh, R]
    return {"head mass": kept.mean(0), "least KV head": kept.min(0).values,
            "least query head": per_query.min(0).values}


def rank_correlation(a, b):
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def report_signals(signals, share=0.1):
    """How well each signal finds the rows the selection serves worst: its rank correlation with
    the rows' recall, and the mean recall of the `share` of rows it would send dense, against
    that of the worst rows by recall itself (the best any signal can pick)."""
    print("\ndense-fallback signals (served selection, layers from --dense-layers on; the %d%% "
          "of rows each would send dense)" % round(share * 100))
    print("%-22s %6s %-18s %12s %16s %16s" % ("head", "B", "signal", "rank corr", "recall of sent",
                                            "worst rows"))
    out = []
    for (name, b), cols in sorted(signals.items()):
        truth = torch.cat(cols["recall"])
        n = max(1, int(len(truth) * share))
        worst = float(truth.sort().values[:n].mean())
        for signal in [k for k in cols if k != "recall"]:
            value = torch.cat(cols[signal])
            sent = float(truth[value.argsort()[:n]].mean())
            corr = rank_correlation(value, truth)
            print("%-22s %6d %-18s %12.3f %16.4f %16.4f" % (name, b, signal, corr, sent, worst))
            out.append({"head": name, "budget": b, "signal": signal, "rank_correlation": corr,
                        "recall_of_sent": sent, "recall_of_worst": worst,
                        "mean_recall": float(truth.mean())})
    return out


def window_mass(p_target, rows, budget, sinks=4):
    """Captured mass of the first `sinks` keys plus the most recent budget - sinks: [L]."""
    keys = torch.arange(p_target.shape[-1], device=rows.device)[None, :]
    keep = (keys < sinks) | (keys > rows[:, None] - (budget - sinks))
    return (p_target * keep).sum(-1).mean((1, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--draft", action="append", required=True, help="NAME=DIR")
    parser.add_argument("--out", required=True)
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--min-len", type=int, default=4096)
    parser.add_argument("--max-len", type=int, default=8192)
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--budgets", default="64,256,1024")
    parser.add_argument("--sinks", type=int, default=4, help="forced in the served selection")
    parser.add_argument("--window", type=int, default=1,
                        help="recent keys (the row itself included) forced in the served selection")
    parser.add_argument("--dense-layers", type=int, default=0,
                        help="also report recall with the first N layers attending densely "
                             "(serving's --sparse-dense-layers: those keep all their mass)")
    parser.add_argument("--oracle-groups", default="",
                        help="comma-separated layer-group counts: also report the oracle with "
                             "one list per run of consecutive layers (0 = one per layer)")
    parser.add_argument("--seed", type=int, default=987654)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    budgets = [int(b) for b in args.budgets.split(",")]
    oracle_groups = [int(g) for g in args.oracle_groups.split(",") if g]
    tokenizer = AutoTokenizer.from_pretrained(args.target)
    target = e3.load_target(args.target, device)
    layer_ids = e3.aux_layer_ids(target.config.num_hidden_layers)
    drafts = {}
    for spec in args.draft:
        name, path = spec.split("=", 1)
        drafts[name] = e3.load_eagle3(path, device)[0]
    docs = synthetic_docs.make_documents(tokenizer, args.docs, args.min_len, args.max_len,
                                         args.seed)
    sums = {}  # (name, mode, B) -> [per-layer sum tensor, count]
    signals = {}  # (name, B) -> {"recall": [R tensors], signal: [R tensors]}

    def add(key, per_layer):
        entry = sums.setdefault(key, [torch.zeros_like(per_layer), 0])
        entry[0] += per_layer
        entry[1] += 1

    t0 = time.time()
    for doc in docs:
        ids = torch.tensor([doc["ids"]], device=device)
        s = ids.shape[1]
        rows = torch.arange(s - args.rows, s, device=device)
        with torch.no_grad():
            _, fused, hs = e3.target_forward(target, ids, layer_ids, want_all=True)
            p_target = e3.target_layer_attention(target, hs, rows)
            del hs
            embeds = target.model.embed_tokens(ids).float()
            nkv = target.config.num_key_value_heads
            for b in budgets:
                add(("sinks+window", "-", b),
                    window_mass(p_target, rows, b))
                add(("oracle", "-", b), captured_mass(p_target, oracle_select(p_target, nkv, b)))
                for g in oracle_groups:
                    groups = g if g > 0 else p_target.shape[0]
                    add(("oracle/%d groups" % groups, "-", b),
                        grouped_oracle_mass(p_target, nkv, b, groups))
            for name, draft in drafts.items():
                cos, sin = e3.draft_rope(draft.cfg, target, s, device)
                for mode in ("zero_hidden", "prev_hidden"):
                    a, _ = draft.inputs(embeds, e3.shift_fused(fused).float(),
                                        zero_hidden=mode == "zero_hidden")
                    q, k = draft.midlayer.self_attn.qk(a, cos, sin)
                    for b in budgets:
                        for label, sinks in ((mode, None), (mode + "+sinks", args.sinks)):
                            picked = e3.select_positions(q, k, rows, b, sinks, args.window)
                            add((name, label, b), captured_mass(p_target, picked))
                            if mode == "prev_hidden" and sinks is not None:
                                cols = signals.setdefault((name, b), {"recall": []})
                                cols["recall"].append(
                                    row_recall(p_target, picked, args.dense_layers).cpu())
                                probs = e3.draft_attention(q, k, rows)
                                for key, value in head_signals(probs, picked).items():
                                    cols.setdefault(key, []).append(value.cpu())
        print("  %s len %d done (%.0fs)" % (doc["kind"], s, time.time() - t0), flush=True)

    results = []
    for (name, mode, b), (per_layer, count) in sums.items():
        per_layer = (per_layer / count).tolist()
        dense = min(args.dense_layers, len(per_layer))
        results.append({"head": name, "mode": mode, "budget": b,
                        "recall": sum(per_layer) / len(per_layer), "per_layer": per_layer,
                        "recall_dense_layers": (dense + sum(per_layer[dense:])) / len(per_layer)})
    print("\nrecall of the target's attention mass (last %d rows, %d docs of %d-%d tokens)" % (
        args.rows, args.docs, args.min_len, args.max_len))
    print("%-22s %-18s" % ("head", "mode") + "".join("%10s" % ("B=%d" % b) for b in budgets))
    head_modes = ["zero_hidden", "zero_hidden+sinks", "prev_hidden", "prev_hidden+sinks"]
    tables = [("recall", "")]
    if args.dense_layers > 0:
        tables.append(("recall_dense_layers", "with layers [0, %d) dense" % args.dense_layers))
    for key, title in tables:
        if title:
            print(title)
        fixed = ["sinks+window", "oracle"] + sorted(
            {r["head"] for r in results if r["head"].startswith("oracle/")},
            key=lambda n: int(n.split("/")[1].split()[0]))
        for name in fixed + list(drafts):
            for mode in (["-"] if name in fixed else head_modes):
                cells = [r[key] for b in budgets for r in results
                         if r["head"] == name and r["mode"] == mode and r["budget"] == b]
                print("%-22s %-18s" % (name, mode) + "".join("%10.4f" % c for c in cells))
    signal_results = report_signals(signals)
    with open(args.out, "w") as f:
        json.dump({"docs": args.docs, "min_len": args.min_len, "max_len": args.max_len,
                   "rows": args.rows, "seed": args.seed, "sinks": args.sinks,
                   "window": args.window, "dense_layers": args.dense_layers,
                   "oracle_groups": oracle_groups,
                   "kinds": [d["kind"] for d in docs], "results": results,
                   "fallback_signals": signal_results}, f, indent=1)


if __name__ == "__main__":
    main()
