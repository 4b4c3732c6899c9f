"""Task accuracy on `specontext eval`'s tasks when decode attends to B positions per KV head
picked by an oracle from the target's own attention (the ceiling of any B-position selection)
or by the retrieval head (what the daemon serves, and variants of its rule).

The tasks are the daemon's own (`specontext eval ... --write-tasks tasks.jsonl --write-only`),
run greedily with Hugging Face transformers and scored by the eval's rules. Prefill is dense, as
in serving; every decode step with more than B cached positions attends, per KV head, to B of
them: the --sinks first positions and its own always, as the daemon selects, and the best others:
  dense      every position (the reference: it should agree with `specontext eval`'s dense run)
  layer:B    in every layer, the top-B of that layer's softmax weights (max over each KV group's
             query heads): exact top-B attention, the best any per-layer list can keep
  shared:B   one list per KV head for all layers (the paper's rule), the top-B of the weights
             averaged over layers; the step runs twice, densely to read the weights, then sparse
  head:B     one list per KV head from the retrieval head (--draft), as the daemon serves it: the
             head's q and K from each token's embedding and the previous position's fused target
             state; a check that the served accuracy is the head's, not the serving path's
  head:B:C   the same head ranking runs of C positions by their highest weight, B / C runs
  head:B:C:D the same with each position's weight the larger of this step's and D times the
             previous step's (a decaying memory of what the head found)
  head:B:C:D:bf16  the same with the head's q and K rounded to bfloat16, as the daemon keeps them
  head:B:C:D:P:T the same (P: fp32 or bf16), and a step whose next-token probability under the
             list falls below T runs again densely (how often is printed per mode)
Every mode starts from the same prefill; the cache is cropped back to the prompt between modes.

    python3 oracle_accuracy.py --target DIR --tasks tasks.jsonl --modes dense,layer:2048 --out acc.json
"""
import argparse
import collections
import json
import re
import time

import torch
import eagle3_draft as e3
from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer, DynamicCache
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS


class Selection:
    """What the decode attention of the current forward pass does (one sequence at a time)."""

    def __init__(self, sinks):
        self.sinks = sinks
        self.kind = "dense"
        self.budget = 0
        self.record = None  # list of per-layer [nkv, S] weights while a shared list is read
        self.shared = None  # [nkv, S] bool: the shared list of this step


class HeadState:
    """The retrieval head's K cache and the last fused target state of one sequence."""

    def __init__(self, draft, target, layer_ids, max_len):
        self.draft, self.target, self.layer_ids = draft, target, layer_ids
        self.cos, self.sin = e3.draft_rope(draft.cfg, target, max_len, target.device)

    def fused(self, hidden_states):
        return torch.cat([hidden_states[i] for i in self.layer_ids], -1).float()

    def start(self, ids, hidden_states):
        """The prompt's K cache: each position's embedding with the previous position's state."""
        fused = self.fused(hidden_states)
        n = ids.shape[1]
        a, _ = self.draft.inputs(self.target.model.embed_tokens(ids).float(), e3.shift_fused(fused))
        self.prompt_k = self.draft.midlayer.self_attn.qk(a, self.cos[:n], self.sin[:n])[1]
        self.prompt_last = fused[:, -1:]

    def reset(self):
        self.k, self.last = self.prompt_k, self.prompt_last

    def weights(self, token, position, precision="fp32"):
        """[nkv, S]: the head's softmax weights for the token at `position`, max over each KV
        group's query heads; the token's K joins the cache."""
        embed = self.target.model.embed_tokens(token).float()
        a, _ = self.draft.inputs(embed, self.last)
        cos, sin = self.cos[position:position + 1], self.sin[position:position + 1]
        q, k = self.draft.midlayer.self_attn.qk(a, cos, sin)
        self.k = torch.cat((self.k, k), 2)
        keys = self.k
        if precision == "bf16":
            q, keys = q.bfloat16().float(), keys.bfloat16().float()
        nh, nkv = q.shape[1], keys.shape[1]
        scores = q[0, :, 0].view(nkv, nh // nkv, -1) @ keys[0].transpose(-1, -2)
        return (scores / q.shape[-1] ** 0.5).softmax(-1).amax(1)


class Memory:
    """What the daemon's --sparse-memory-decay D ranks by: each position's larger of this step's
    weight and D times its previous ranking weight."""

    def __init__(self, decay):
        self.decay, self.score = decay, None

    def rank(self, weights):
        if self.decay > 0 and self.score is not None:
            prev = torch.nn.functional.pad(self.score, (0, weights.shape[-1] - self.score.shape[-1]))
            weights = torch.maximum(weights, self.decay * prev)
        self.score = weights
        return weights


def keep_mask(weights, budget, sinks, chunk=1):
    """weights [nkv, S] -> bool [nkv, S]: the sinks, the last position and the best of the rest,
    B in all. With chunk > 1 whole runs of `chunk` positions are kept, ranked by their highest
    weight: the first and the last run always, B / chunk runs in all."""
    s = weights.shape[-1]
    score = weights.clone()
    score[:, :sinks] = float("inf")
    score[:, -1] = float("inf")
    if chunk > 1:
        pad = (-s) % chunk
        score = torch.nn.functional.pad(score, (0, pad), value=float("-inf"))
        score = score.view(score.shape[0], -1, chunk).amax(-1)
        budget = max(1, budget // chunk)
    top = score.topk(min(score.shape[-1], budget), -1).indices
    keep = torch.zeros_like(score, dtype=torch.bool).scatter_(-1, top, True)
    return keep.repeat_interleave(chunk, -1)[:, :s] if chunk > 1 else keep


def make_attention(state, sdpa):
    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        s = key.shape[2]
        sparse = state.kind != "dense" and s > state.budget
        if query.shape[2] != 1 or (not sparse and state.record is None):
            return sdpa(module, query, key, value, attention_mask, scaling=scaling,
                        dropout=dropout, **kwargs)
        b, nh, _, d = query.shape
        nkv = key.shape[1]
        scale = scaling if scaling is not None else module.scaling
        q = query.view(b, nkv, nh // nkv, d).float()
        scores = torch.einsum("bkgd,bksd->bkgs", q, key.float()) * scale
        if state.record is not None:
            state.record.append(scores.softmax(-1)[0].mean(1))  # [nkv, S]
        elif state.kind == "layer":
            mask = keep_mask(scores.softmax(-1)[0].amax(1), state.budget, state.sinks)
            scores = scores.masked_fill(~mask[None, :, None, :], float("-inf"))
        else:
            scores = scores.masked_fill(~state.shared[None, :, None, :], float("-inf"))
        out = torch.einsum("bkgs,bksd->bkgd", scores.softmax(-1), value.float())
        return out.reshape(b, nh, 1, d).transpose(1, 2).to(query.dtype), None

    return attention


def first_word(text):
    m = re.search(r"[A-Za-z0-9_-]+", text)
    return m.group(0) if m else ""


def contains_word(text, word):
    return re.search(r"(?<![A-Za-z0-9_-])" + re.escape(word) + r"(?![A-Za-z0-9_-])", text,
                     re.IGNORECASE) is not None


def score(task, answer):
    expected = task["expected"]
    if not expected:
        return 0.0
    if task["rule"] == "first_word":
        return float(first_word(answer).lower() == expected[0].lower())
    return sum(contains_word(answer, e) for e in expected) / len(expected)


def drop_after(cache, length):
    """Crops the cache to its first `length` positions (a negative crop removes that many)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def load_target(path, wrap_attention):
    """(tokenizer, model, stop ids) of the target on the GPU, its "sdpa" attention replaced by
    wrap_attention(the original)."""
    AttentionInterface.register("sdpa", wrap_attention(ALL_ATTENTION_FUNCTIONS["sdpa"]))
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").cuda().eval()
    stop_ids = token_ids(model.config.eos_token_id) | token_ids(
        model.generation_config.eos_token_id)
    return tokenizer, model, stop_ids


def token_ids(value):
    """A config's token id or list of them, as a set."""
    if value is None:
        return set()
    return {value} if isinstance(value, int) else set(value)


def line_complete(answer):
    nl = answer.find("\n")
    return nl >= 0 and answer[:nl].strip() != ""


# Per mode: [decode steps run again densely, sparse decode steps].
REDONE = collections.defaultdict(lambda: [0, 0])


@torch.no_grad()
def decode(model, tokenizer, cache, state, head, mode, first, task, stop_ids):
    parts = mode.split(":")
    kind, budget, chunk, decay, precision, redo = (
        parts + ["dense", "0", "1", "0", "fp32", "0"][len(parts):])
    state.kind, state.budget = kind, int(budget)
    if kind == "head":
        head.reset()
        memory = Memory(float(decay))
    generated = [first]
    while len(generated) < task["max_tokens"] and generated[-1] not in stop_ids:
        answer = tokenizer.decode(generated, skip_special_tokens=True)
        if task.get("single_line", True) and line_complete(answer):
            break
        token = torch.tensor([[generated[-1]]], device=model.device)
        if kind == "shared" and cache.get_seq_length() + 1 > state.budget:
            state.record = []
            model(token, past_key_values=cache, use_cache=True, logits_to_keep=1)
            drop_after(cache, cache.get_seq_length() - 1)
            state.shared = keep_mask(torch.stack(state.record).mean(0), state.budget, state.sinks)
            state.record = None
        if kind == "head":
            ranking = memory.rank(head.weights(token, cache.get_seq_length(), precision))
            state.shared = keep_mask(ranking, state.budget, state.sinks, int(chunk))
        out = model(token, past_key_values=cache, use_cache=True, logits_to_keep=1,
                    output_hidden_states=kind == "head")
        if kind == "head" and cache.get_seq_length() > state.budget:
            REDONE[mode][1] += 1
            if out.logits[0, -1].float().softmax(-1).max() < float(redo):
                REDONE[mode][0] += 1
                drop_after(cache, cache.get_seq_length() - 1)
                state.kind = "dense"
                out = model(token, past_key_values=cache, use_cache=True, logits_to_keep=1,
                            output_hidden_states=True)
                state.kind = kind
        if kind == "head":
            head.last = head.fused(out.hidden_states)
        generated.append(int(out.logits[0, -1].argmax()))
    return tokenizer.decode(generated, skip_special_tokens=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--modes", default="dense,layer:2048,shared:2048")
    ap.add_argument("--draft", help="the retrieval head of head:B (an EAGLE-3 directory)")
    ap.add_argument("--sinks", type=int, default=4, help="as --sparse-sinks")
    ap.add_argument("--only", help="run only these tasks (comma-separated names)")
    ap.add_argument("--start", type=int, default=0, help="skip the first N tasks (resume)")
    ap.add_argument("--limit", type=int, default=0, help="run at most N tasks")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    state = Selection(args.sinks)
    tokenizer, model, stop_ids = load_target(args.target, lambda sdpa: make_attention(state, sdpa))

    head = None
    if args.draft:
        draft = e3.load_eagle3(args.draft, model.device)[0]
        head = HeadState(draft, model, e3.aux_layer_ids(model.config.num_hidden_layers),
                         model.config.max_position_embeddings + 1024)
    # Sample-major, so that a run cut short has every (task, length) cell equally far along.
    tasks = sorted((json.loads(line) for line in open(args.tasks)),
                   key=lambda t: (t["index"], t["task"], t["length"]))[args.start:]
    if args.only:
        tasks = [t for t in tasks if t["task"] in args.only.split(",")]
    if args.limit:
        tasks = tasks[:args.limit]
    modes = args.modes.split(",")
    cells = collections.defaultdict(list)
    answers = []
    start = time.time()
    for i, task in enumerate(tasks):
        ids = tokenizer(task["prompt"], add_special_tokens=False, return_tensors="pt").input_ids
        if ids.shape[1] != task["prompt_tokens"]:
            raise SystemExit(f"task {i}: {ids.shape[1]} tokens, the daemon made "
                             f"{task['prompt_tokens']}")
        cache = DynamicCache()
        state.kind = "dense"
        with torch.no_grad():
            ids = ids.cuda()
            out = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1,
                        output_hidden_states=head is not None)
            if head is not None:
                head.start(ids, out.hidden_states)
        first = int(out.logits[0, -1].argmax())
        row = {"task": task["task"], "length": task["length"], "index": task["index"]}
        for mode in modes:
            drop_after(cache, ids.shape[1])
            answer = decode(model, tokenizer, cache, state, head, mode, first, task, stop_ids)
            row[mode] = {"answer": answer, "score": score(task, answer)}
            cells[(mode, task["length"])].append(row[mode]["score"])
        answers.append(row)
        summary = {f"{m} @ {n}": round(100 * sum(v) / len(v), 1) for (m, n), v in cells.items()}
        # Rewritten after every task, so a run cut off by its time limit keeps what it scored.
        redone = {m: f"{r[0]}/{r[1]}" for m, r in REDONE.items() if r[0]}
        print(f"[{i + 1}/{len(tasks)}] {time.time() - start:.0f} s {summary}"
              f"{' redone dense ' + str(redone) if redone else ''}", flush=True)
        json.dump({"modes": modes, "sinks": args.sinks, "summary": summary, "answers": answers},
                  open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
