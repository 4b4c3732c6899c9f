"""The EAGLE-3 draft (one decoder layer over [embedding ; fused target hidden states]), the
target-side helpers the training and evaluation scripts share, and the checkpoint writer.

Shapes: H = draft hidden = target hidden, nh query heads, nkv KV heads, hd head dim, V draft vocab.
Pairing (as EAGLE-3): the draft's input at position t is (token x_t, fused target state of
position t-1, zeros at t = 0); its output is trained toward the target's next-token distribution
at position t. The retrieval head at decode time sees the same pair (new token, previous state).
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return (self.weight * x).to(dtype)


def rope_tables(length, head_dim, theta, device):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    freqs = torch.outer(torch.arange(length, device=device).float(), inv)
    emb = torch.cat((freqs, freqs), -1)
    return emb.cos(), emb.sin()


def rope_scaling_of(target_cfg):
    """The target's RoPE scaling as a rope_scaling dict (YaRN, ...), or None for plain RoPE."""
    params = (getattr(target_cfg, "rope_parameters", None)
              or getattr(target_cfg, "rope_scaling", None) or {})
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return None
    return {k: v for k, v in params.items() if k != "rope_theta"}


def draft_rope(cfg, target, length, device):
    """cos/sin [length, hd] (float32) of the draft's RoPE. A scaled RoPE (YaRN) must be its
    target's: the target's rotary module computes the tables, attention factor included, as the
    daemon's shared RoPE does."""
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return rope_tables(length, cfg["head_dim"], cfg["rope_theta"], device)
    theirs = rope_scaling_of(target.config) or {}
    for key in ("rope_type", "factor", "original_max_position_embeddings"):
        if scaling.get(key) != theirs.get(key):
            raise ValueError("the draft's rope_scaling %s differs from the target's %s at %s" %
                             (scaling, theirs, key))
    pos = torch.arange(length, device=device)[None]
    cos, sin = target.model.rotary_emb(torch.zeros(1, device=device), pos)
    return cos[0].float(), sin[0].float()


def apply_rope(x, cos, sin):
    """x: [B, heads, S, hd]; cos/sin: [S, hd] (rotate-half convention)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, hidden, nh, nkv, hd):
        super().__init__()
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.q_proj = nn.Linear(2 * hidden, nh * hd, bias=False)
        self.k_proj = nn.Linear(2 * hidden, nkv * hd, bias=False)
        self.v_proj = nn.Linear(2 * hidden, nkv * hd, bias=False)
        self.o_proj = nn.Linear(nh * hd, hidden, bias=False)

    def qk(self, a, cos, sin):
        """q [B, nh, S, hd] and k [B, nkv, S, hd] after RoPE."""
        b, s, _ = a.shape
        q = self.q_proj(a).view(b, s, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(a).view(b, s, self.nkv, self.hd).transpose(1, 2)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def forward(self, a, cos, sin):
        b, s, _ = a.shape
        q, k = self.qk(a, cos, sin)
        v = self.v_proj(a).view(b, s, self.nkv, self.hd).transpose(1, 2)
        # Expanded KV heads rather than enable_gqa, so the fused (flash) kernel always applies.
        groups = self.nh // self.nkv
        out = F.scaled_dot_product_attention(q, k.repeat_interleave(groups, 1),
                                             v.repeat_interleave(groups, 1), is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.nh * self.hd)), q, k


class MLP(nn.Module):
    def __init__(self, hidden, inter):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MidLayer(nn.Module):
    def __init__(self, hidden, nh, nkv, hd, inter, eps):
        super().__init__()
        self.input_layernorm = RMSNorm(hidden, eps)
        self.hidden_norm = RMSNorm(hidden, eps)
        self.post_attention_layernorm = RMSNorm(hidden, eps)
        self.self_attn = Attention(hidden, nh, nkv, hd)
        self.mlp = MLP(hidden, inter)


class Eagle3Draft(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h = cfg["hidden_size"]
        self.fc = nn.Linear(3 * cfg["target_hidden_size"], h, bias=False)
        self.midlayer = MidLayer(h, cfg["num_attention_heads"], cfg["num_key_value_heads"],
                                 cfg["head_dim"], cfg["intermediate_size"], cfg["rms_norm_eps"])
        self.norm = RMSNorm(h, cfg["rms_norm_eps"])
        self.lm_head = nn.Linear(h, cfg["draft_vocab_size"], bias=False)
        self.register_buffer("d2t", torch.zeros(cfg["draft_vocab_size"], dtype=torch.long))
        self.register_buffer("t2d", torch.zeros(cfg["vocab_size"], dtype=torch.bool))

    def d2t_ids(self):
        """Target token id of every draft id."""
        return torch.arange(self.cfg["draft_vocab_size"], device=self.d2t.device) + self.d2t

    def inputs(self, embeds, fused_prev, zero_hidden=False):
        """a = [RMSNorm_in(embed) ; RMSNorm_hidden(fc(fused_prev))]: [B, S, 2H]."""
        layer = self.midlayer
        e = layer.input_layernorm(embeds)
        if zero_hidden:
            return torch.cat((e, torch.zeros_like(e)), -1), None
        f = self.fc(fused_prev)
        return torch.cat((e, layer.hidden_norm(f)), -1), f

    def forward(self, embeds, fused_prev, cos, sin):
        """Draft-vocab logits [B, S, V], plus the post-RoPE q and k of the attention."""
        a, f = self.inputs(embeds, fused_prev)
        attn, q, k = self.midlayer.self_attn(a, cos, sin)
        u = f + attn
        o = u + self.midlayer.mlp(self.midlayer.post_attention_layernorm(u))
        return self.lm_head(self.norm(o)), q, k


def shift_fused(fused):
    """Fused states of position t-1 at index t (zeros at t = 0)."""
    return torch.cat((torch.zeros_like(fused[:, :1]), fused[:, :-1]), 1)


def aux_layer_ids(num_layers):
    # Indices into transformers' output_hidden_states (0 = embeddings), i.e. the input of that
    # layer: SafeAILab's and vLLM's low / middle / high choice.
    return [2, num_layers // 2, num_layers - 3]


def target_forward(target, ids, layer_ids, want_all=False):
    """Runs the target once: (final normed hidden [B,S,Ht], fused [B,S,3Ht], all hidden states)."""
    out = target.model(input_ids=ids, output_hidden_states=True, use_cache=False)
    hs = out.hidden_states
    fused = torch.cat([hs[i] for i in layer_ids], -1)
    return out.last_hidden_state, fused, (hs if want_all else None)


def target_draft_logits(target, final_hidden, d2t_ids):
    """The target's logits restricted to the draft vocabulary (never the full 49K row)."""
    w = target.lm_head.weight[d2t_ids]
    return final_hidden @ w.t()


def target_layer_attention(target, hidden_states, rows, layers=None, mean=False):
    """The target's attention probabilities for query rows `rows` (LongTensor of positions):
    [layers, nh, len(rows), S] float32, causal, or with mean=True their mean over the layers,
    [nh, len(rows), S], summed as it goes (at 32K the stack would take gigabytes). Recomputed
    from each layer's input hidden state (hidden_states[l]), so no O(S^2) attention matrix is ever
    stored for the whole sequence."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cfg = target.config
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // nh
    s = hidden_states[0].shape[1]
    device = hidden_states[0].device
    pos = torch.arange(s, device=device)[None]
    cos, sin = target.model.rotary_emb(hidden_states[0], pos)
    mask = pos[0][None, :] > rows[:, None]  # [R, S]: future keys
    out, total = [], None
    layers = list(layers if layers is not None else range(cfg.num_hidden_layers))
    for l in layers:
        layer = target.model.layers[l]
        x = layer.input_layernorm(hidden_states[l][:1])
        q = layer.self_attn.q_proj(x[:, rows]).view(1, len(rows), nh, hd).transpose(1, 2)
        k = layer.self_attn.k_proj(x).view(1, s, nkv, hd).transpose(1, 2)
        q, _ = apply_rotary_pos_emb(q, q, cos[:, rows], sin[:, rows])
        _, k = apply_rotary_pos_emb(k, k, cos, sin)
        k = k.repeat_interleave(nh // nkv, 1)
        scores = (q.float() @ k.float().transpose(-1, -2)) * layer.self_attn.scaling
        probs = scores.masked_fill(mask, float("-inf")).softmax(-1)[0]
        if mean:
            total = probs if total is None else total.add_(probs)
        else:
            out.append(probs)
    return total / len(layers) if mean else torch.stack(out)


def draft_attention(q, k, rows, log=False):
    """The draft's attention for query rows: [nh, R, S] float32 (batch 0), probabilities or, with
    log=True, log-probabilities with 0 at the masked (future) keys."""
    nh, nkv, hd = q.shape[1], k.shape[1], q.shape[-1]
    kk = k[0].float().repeat_interleave(nh // nkv, 0)
    scores = (q[0][:, rows].float() @ kk.transpose(-1, -2)) / math.sqrt(hd)
    mask = torch.arange(k.shape[2], device=q.device)[None, :] > rows[:, None]
    scores = scores.masked_fill(mask, float("-inf"))
    if log:
        return scores.log_softmax(-1).masked_fill(mask, 0.0)
    return scores.softmax(-1)


def draft_config(target_cfg, draft_vocab):
    hd = getattr(target_cfg, "head_dim", None) or target_cfg.hidden_size // target_cfg.num_attention_heads
    rope_theta = getattr(target_cfg, "rope_theta", None)
    if rope_theta is None:
        rope_theta = (getattr(target_cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return {
        "hidden_size": target_cfg.hidden_size,
        "target_hidden_size": target_cfg.hidden_size,
        "num_attention_heads": target_cfg.num_attention_heads,
        "num_key_value_heads": target_cfg.num_key_value_heads,
        "head_dim": hd,
        "intermediate_size": target_cfg.intermediate_size,
        "rms_norm_eps": target_cfg.rms_norm_eps,
        "vocab_size": target_cfg.vocab_size,
        "draft_vocab_size": draft_vocab,
        "rope_theta": float(rope_theta),
        "max_position_embeddings": target_cfg.max_position_embeddings,
        "rope_scaling": rope_scaling_of(target_cfg),
        "num_target_layers": target_cfg.num_hidden_layers,
    }


def init_from_target(draft, target):
    """Warm start: the embedding half of the layer from the target's layer 0 (which also reads
    the normalised embedding), the LM head from the target's (tied) rows of the draft vocabulary.
    The hidden half and fc start small and random."""
    t0 = target.model.layers[0]
    layer = draft.midlayer
    h = draft.cfg["hidden_size"]
    with torch.no_grad():
        layer.input_layernorm.weight.copy_(t0.input_layernorm.weight.float())
        layer.post_attention_layernorm.weight.copy_(t0.post_attention_layernorm.weight.float())
        for name in ("q_proj", "k_proj", "v_proj"):
            w = getattr(layer.self_attn, name).weight
            w[:, :h].copy_(getattr(t0.self_attn, name).weight.float())
            w[:, h:].normal_(0, 0.02 / math.sqrt(2))
        layer.self_attn.o_proj.weight.copy_(t0.self_attn.o_proj.weight.float())
        for name in ("gate_proj", "up_proj", "down_proj"):
            getattr(layer.mlp, name).weight.copy_(getattr(t0.mlp, name).weight.float())
        draft.norm.weight.copy_(target.model.norm.weight.float())
        draft.lm_head.weight.copy_(target.lm_head.weight[draft.d2t_ids()].float())
        draft.fc.weight.normal_(0, 0.02)


# What the retrieval head reads of a draft: its embedding-side norm, the q/k projections and the
# fused-state path (docs/specontext.md); a retrieval-only checkpoint keeps just these.
RETRIEVAL_TENSORS = ("fc.weight", "midlayer.input_layernorm.weight", "midlayer.hidden_norm.weight",
                     "midlayer.self_attn.q_proj.weight", "midlayer.self_attn.k_proj.weight")


def save_eagle3(draft, out_dir, extra=None, retrieval_only=False):
    """EAGLE-3 HF format: config.json (LlamaForCausalLMEagle3) and bf16 model.safetensors with
    fc, midlayer.*, norm, lm_head, d2t (int64), t2d (bool); no embedding. retrieval_only keeps
    RETRIEVAL_TENSORS alone (a fifth of the size; it can select but not draft tokens)."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    c = draft.cfg
    tensors = {}
    for name, value in draft.state_dict().items():
        if retrieval_only and name not in RETRIEVAL_TENSORS:
            continue
        if name in ("d2t", "t2d"):
            tensors[name] = value.detach().cpu().contiguous()
        else:
            tensors[name] = value.detach().to(torch.bfloat16).cpu().contiguous()
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    save_file(tensors, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    config = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": c["hidden_size"],
        "target_hidden_size": c["target_hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": 1,
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["head_dim"],
        "vocab_size": c["vocab_size"],
        "draft_vocab_size": c["draft_vocab_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": c.get("rope_scaling"),
        "rms_norm_eps": c["rms_norm_eps"],
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "eagle_config": {
            "eagle_aux_hidden_state_layer_ids": aux_layer_ids(c["num_target_layers"]),
            "norm_before_residual": False,
            "fc_norm": False,
            "norm_output": False,
        },
    }
    if retrieval_only:
        config["retrieval_head_only"] = True
    if extra:
        config["training"] = extra
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def load_eagle3(path, device):
    """(draft, config.json) from an EAGLE-3 directory; a retrieval-only checkpoint leaves the
    parts it lacks at their initial values (usable for q/k, not for drafting tokens)."""
    from safetensors.torch import load_file

    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    tensors = load_file(os.path.join(path, "model.safetensors"))
    keys = ("hidden_size", "target_hidden_size", "num_attention_heads", "num_key_value_heads",
            "head_dim", "intermediate_size", "rms_norm_eps", "vocab_size", "draft_vocab_size",
            "rope_theta", "max_position_embeddings")
    cfg = {k: config[k] for k in keys}
    cfg["rope_scaling"] = config.get("rope_scaling")
    cfg["num_target_layers"] = config["eagle_config"]["eagle_aux_hidden_state_layer_ids"][2] + 3
    draft = Eagle3Draft(cfg)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    missing, unexpected = draft.load_state_dict(state, strict=False)
    lacking = [k for k in RETRIEVAL_TENSORS if k in missing]
    if lacking or unexpected:
        raise ValueError("%s: missing %s, unexpected %s" % (path, lacking, unexpected))
    return draft.to(device).eval(), config


def select_positions(q, k, rows, budget, sinks=4, window=1):
    """[nkv, R, B] positions the retrieval head selects, as the daemon's planners do: the draft's
    softmax per query head, the max over each GQA group, the first `sinks` keys and the last
    `window` keys up to the row itself forced in (nothing forced with sinks=None: the paper's pure
    head selection), then the top B."""
    probs = draft_attention(q, k, rows)  # [nh, R, S]
    nh, nkv = q.shape[1], k.shape[1]
    w = probs.view(nkv, nh // nkv, *probs.shape[1:]).amax(1)
    if sinks is not None:
        w[:, :, :sinks] = 2.0
        keys = torch.arange(w.shape[-1], device=w.device)[None, :]
        recent = (keys <= rows[:, None]) & (keys > rows[:, None] - max(1, window))
        w.masked_fill_(recent[None], 2.0)
    return w.topk(min(budget, w.shape[-1]), -1).indices


def load_target(model_dir, device, dtype=torch.bfloat16, attn="sdpa"):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def log(msg, path=None):
    import time

    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
