"""Distils an EAGLE-3 draft from the target (see docs/training.md).

Each step runs the frozen target (bf16) on either a batch of its own generated text (even steps)
or one long synthetic retrieval document (odd steps), and trains the draft (fp32 weights, bf16
autocast) to match the target's next-token distribution renormalised over the draft vocabulary
(soft cross-entropy). Training-time test is reduced to one step: the draft always sees the
target's own hidden states, never its own earlier outputs.

--align-attention adds, on the long documents, KL(target || draft) between the target's
attention (per query head, averaged over all layers) and the draft's attention (same head, GQA
groups as the target's) for --align-rows query rows (half the last rows, half drawn from the
second half of the document), both with the draft's real input and with the hidden half zeroed
(the two ways the retrieval head runs), weighted --hidden-weight and 1 - --hidden-weight.

--init-from starts from an existing draft (its vocabulary too) instead of the target's layer 0:
how the long-context variant's head is made, from the default one, with the variant's RoPE.

Seeded: the data of step i depends only on (seed, i), so a resumed run sees what an uncut one
would. The learning-rate schedule follows max(step / --steps, elapsed / --max-seconds), so the run
always decays to the end within its time budget.

    python3 train_draft.py --target DIR --data data.pt --out DRAFT_DIR --work WORK_DIR
        [--align-attention] [--steps 1500] [--max-seconds 150] [--long-share 0.5]
        [--init-from DRAFT_DIR] [--retrieval-only] [--retrieval-out DIR]
"""
import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F

import eagle3_draft as e3


def is_long_step(step, share):
    """Spreads long-document steps evenly: a share of 0.5 makes every odd step long."""
    return math.floor((step + 1) * share) > math.floor(step * share)


def batch_for_step(data, step, args, pad_id):
    rng = random.Random(args.seed * 1000003 + step)
    if is_long_step(step, args.long_share) and data["long"]:
        ids = data["long"][rng.randrange(len(data["long"]))][:args.long_max]
        return torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.bool), True
    seqs = [data["short"][rng.randrange(len(data["short"]))][:args.short_max]
            for _ in range(args.short_batch)]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = torch.tensor(s)
        mask[row, :len(s)] = True
    return ids, mask, False


def align_rows(length, count, rng, device):
    last = list(range(max(0, length - count // 2), length))
    pool = range(length // 2, max(length // 2 + 1, length - count // 2))
    drawn = rng.sample(pool, min(len(pool), count - len(last)))
    return torch.tensor(sorted(set(last + drawn)), device=device)


def attention_kl(p_target, log_p_draft):
    """Mean over heads and rows of KL(p_target || p_draft); p_target is 0 at masked keys."""
    log_t = torch.log(p_target.clamp_min(1e-12))
    return (p_target * (log_t - log_p_draft)).sum(-1).mean()


def lr_at(progress, args):
    if progress < args.warmup_fraction:
        return args.lr * progress / args.warmup_fraction
    x = (progress - args.warmup_fraction) / (1 - args.warmup_fraction)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, x))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--align-attention", action="store_true")
    parser.add_argument("--align-weight", type=float, default=1.0)
    parser.add_argument("--lm-weight", type=float, default=1.0,
                        help="weight of the next-token loss (0: train the retrieval path alone, "
                        "as for a retrieval-only head; give --long-share 1 then)")
    parser.add_argument("--align-rows", type=int, default=64)
    parser.add_argument("--hidden-weight", type=float, default=0.5,
                        help="share of the alignment loss on the real input (rest: zero hidden)")
    parser.add_argument("--long-share", type=float, default=0.5,
                        help="share of steps on a long document")
    parser.add_argument("--init-from", help="start from this draft instead of the target")
    parser.add_argument("--retrieval-only", action="store_true",
                        help="save only the tensors the retrieval head reads")
    parser.add_argument("--retrieval-out", help="also save the retrieval-only form here")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--max-seconds", type=float, default=150.0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-fraction", type=float, default=0.03)
    parser.add_argument("--short-batch", type=int, default=16)
    parser.add_argument("--short-max", type=int, default=1024)
    parser.add_argument("--long-max", type=int, default=8192)
    parser.add_argument("--ckpt-every", type=int, default=100)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    if os.path.exists(os.path.join(args.out, "model.safetensors")):
        print("train_draft: %s exists" % args.out)
        return
    os.makedirs(args.work, exist_ok=True)
    log_path = os.path.join(args.work, "train.log")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True

    data = torch.load(args.data)
    target = e3.load_target(args.target, device)
    layer_ids = e3.aux_layer_ids(target.config.num_hidden_layers)
    cfg = e3.draft_config(target.config, len(data["d2t"]))
    if args.init_from:
        draft, _ = e3.load_eagle3(args.init_from, device)
        draft.train()
        for key in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim"):
            if draft.cfg[key] != cfg[key]:
                raise SystemExit("--init-from: %s is %s, the target's %s" % (
                    key, draft.cfg[key], cfg[key]))
        # The target's RoPE and context from now on; the draft's vocabulary stays its own.
        cfg["draft_vocab_size"] = draft.cfg["draft_vocab_size"]
        draft.cfg = cfg
    else:
        draft = e3.Eagle3Draft(cfg)
        draft.d2t.copy_(data["d2t"])
        draft.t2d.copy_(data["t2d"])
        draft = draft.to(device)
        e3.init_from_target(draft, target)
    d2t_ids = draft.d2t_ids()
    opt = torch.optim.AdamW(draft.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    cos, sin = e3.draft_rope(cfg, target, max(args.long_max, args.short_max), device)
    pad_id = target.config.eos_token_id if target.config.eos_token_id is not None else 0
    if isinstance(pad_id, list):
        pad_id = pad_id[0]

    ckpt_path = os.path.join(args.work, "ckpt.pt")
    step, elapsed, history = 0, 0.0, []
    if os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location=device)
        draft.load_state_dict(ckpt["draft"])
        opt.load_state_dict(ckpt["opt"])
        step, elapsed, history = ckpt["step"], ckpt["elapsed"], ckpt["history"]
        e3.log("resumed at step %d (%.0fs trained)" % (step, elapsed), log_path)

    def save_ckpt():
        tmp = ckpt_path + ".tmp"
        torch.save({"draft": draft.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed, "history": history, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    e3.log("training %s draft: %d params, draft vocab %d, aux layers %s, device %s" % (
        "attention-aligned" if args.align_attention else "plain",
        sum(p.numel() for p in draft.parameters()), cfg["draft_vocab_size"], layer_ids, device),
        log_path)
    window = []
    start = time.time() - elapsed
    while step < args.steps and elapsed < args.max_seconds:
        ids, mask, is_long = batch_for_step(data, step, args, pad_id)
        ids, mask = ids.to(device), mask.to(device)
        s = ids.shape[1]
        align = args.align_attention and is_long
        with torch.no_grad():
            final, fused, hs = e3.target_forward(target, ids, layer_ids, want_all=align)
            p_target = e3.target_draft_logits(target, final, d2t_ids).float().softmax(-1)
            embeds = target.model.embed_tokens(ids).float()
            if align:
                rows = align_rows(s, args.align_rows, random.Random(args.seed + step), device)
                p_attn = e3.target_layer_attention(target, hs, rows, mean=True)
                del hs
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            logits, q, k = draft(embeds, e3.shift_fused(fused).float(), cos[:s], sin[:s])
        log_p = F.log_softmax(logits.float(), -1)
        ce = -(p_target * log_p).sum(-1)
        loss_lm = (ce * mask).sum() / mask.sum()
        agree = ((logits.argmax(-1) == p_target.argmax(-1)) & mask).sum() / mask.sum()
        loss = args.lm_weight * loss_lm
        kl = kl0 = torch.zeros((), device=device)
        if align:
            kl = attention_kl(p_attn, e3.draft_attention(q, k, rows, log=True))
            if args.hidden_weight < 1.0:
                with torch.autocast(device_type=device, dtype=torch.bfloat16):
                    a0, _ = draft.inputs(embeds, None, zero_hidden=True)
                    q0, k0 = draft.midlayer.self_attn.qk(a0, cos[:s], sin[:s])
                kl0 = attention_kl(p_attn, e3.draft_attention(q0, k0, rows, log=True))
            loss = loss + args.align_weight * (args.hidden_weight * kl +
                                               (1.0 - args.hidden_weight) * kl0)
        progress = max(step / args.steps, elapsed / args.max_seconds)
        for group in opt.param_groups:
            group["lr"] = lr_at(progress, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(draft.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.time() - start
        window.append((loss_lm.item(), agree.item(), is_long, kl.item(), kl0.item()))
        if step % args.log_every == 0 or step == args.steps:
            short_w = [w for w in window if not w[2]]
            long_w = [w for w in window if w[2]]
            mean = lambda rows, i: sum(r[i] for r in rows) / max(1, len(rows))
            entry = {"step": step, "elapsed_s": round(elapsed, 1), "lr": lr_at(progress, args),
                     "ce_short": mean(short_w, 0), "top1_short": mean(short_w, 1),
                     "ce_long": mean(long_w, 0), "top1_long": mean(long_w, 1),
                     "attn_kl": mean(long_w, 3), "attn_kl_zero_hidden": mean(long_w, 4)}
            history.append(entry)
            e3.log("step %d %.0fs lr %.2e | short ce %.3f top1 %.3f | long ce %.3f top1 %.3f | "
                   "attn kl %.3f (zero-hidden %.3f)" % (
                       step, elapsed, entry["lr"], entry["ce_short"], entry["top1_short"],
                       entry["ce_long"], entry["top1_long"], entry["attn_kl"],
                       entry["attn_kl_zero_hidden"]), log_path)
            window = []
        if step % args.ckpt_every == 0:
            save_ckpt()
    save_ckpt()
    e3.save_eagle3(draft, args.out, retrieval_only=args.retrieval_only)
    if args.retrieval_out:
        e3.save_eagle3(draft, args.retrieval_out, retrieval_only=True)
    with open(os.path.join(args.work, "train_summary.json"), "w") as f:
        json.dump({"steps": step, "seconds": elapsed, "args": vars(args), "history": history}, f,
                  indent=1)
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    e3.log("saved %s (%.1f MB) after %d steps, %.0fs" % (args.out, size / 1e6, step, elapsed),
           log_path)


if __name__ == "__main__":
    main()
