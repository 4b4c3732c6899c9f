"""Training data for the draft, cached in one file (data.pt):

- "short": text the target generates itself (sampled, temperature 0.8, top-p 0.95) from varied
  prompts: chat prompts through its chat template, and plain-text openings;
- "long": synthetic retrieval documents (synthetic_docs.py) of --long-min..--long-max tokens;
- "d2t"/"t2d": the draft vocabulary, the --draft-vocab most frequent target tokens over both.

    python3 make_data.py --target DIR --out data.pt [--sequences 384 --new-tokens 384 ...]
"""
import argparse
import collections
import os
import random
import time

import torch

import synthetic_docs

TOPICS = ("the water cycle", "black holes", "the French revolution", "photosynthesis",
          "machine learning", "the stock market", "volcanoes", "healthy sleep", "the Roman empire",
          "climate change", "prime numbers", "the human heart", "electric cars", "coffee",
          "honey bees", "the internet", "chess", "jazz music", "the moon landing", "vaccines",
          "recycling", "ancient Egypt", "rainbows", "compound interest", "sorting algorithms",
          "the immune system", "baking bread", "earthquakes", "the printing press", "gravity",
          "a job interview", "learning a language", "saving money", "a birthday party",
          "a rainy day", "friendship", "a trip to Japan", "gardening", "a lost cat", "robots")
TASKS = ("Explain {t} to a ten-year-old.", "Write a short story about {t}.",
         "Give me five facts about {t}.", "Write a poem about {t}.",
         "What are the pros and cons of {t}?", "Summarize the history of {t}.",
         "Write an email to a friend about {t}.", "How does {t} work? Answer step by step.",
         "Write a Python function related to {t}, with comments.",
         "Give three questions and answers about {t}.", "Describe {t} in one paragraph.",
         "Write a short dialogue between two people discussing {t}.")
OPENINGS = ("Once upon a time, {t}", "The most important thing about {t} is",
            "Chapter 1. {t}\n\n", "Here is a list of notes about {t}:\n1.",
            "In today's lecture we discuss {t}.", "def main():\n    # {t}\n")


def prompts(tokenizer, count, rng):
    out = []
    for i in range(count):
        topic = rng.choice(TOPICS)
        if i % 4 == 3:
            text = rng.choice(OPENINGS).format(t=topic)
            out.append(tokenizer.encode(text, add_special_tokens=False))
        else:
            message = rng.choice(TASKS).format(t=topic)
            ids = tokenizer.apply_chat_template([{"role": "user", "content": message}],
                                                add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            out.append(list(ids))
    return out


@torch.no_grad()
def self_generate(target, tokenizer, prompt_ids, new_tokens, batch, device):
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    seqs = []
    for start in range(0, len(prompt_ids), batch):
        chunk = prompt_ids[start:start + batch]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, p in enumerate(chunk):
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        out = target.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                              do_sample=True, temperature=0.8, top_p=0.95, top_k=0,
                              max_new_tokens=new_tokens, pad_token_id=pad, eos_token_id=eos)
        for row, p in enumerate(chunk):
            gen = out[row, width:].tolist()
            if eos in gen:
                gen = gen[:gen.index(eos) + 1]
            seqs.append(p + gen)
        print("  generated %d/%d" % (len(seqs), len(prompt_ids)), flush=True)
    return seqs


def draft_vocab(seqs, vocab_size, size):
    counts = collections.Counter(t for s in seqs for t in s)
    chosen = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]
    # Fill up with the lowest unused ids when the data has fewer distinct tokens.
    taken = set(chosen)
    filler = (t for t in range(vocab_size) if t not in taken)
    while len(chosen) < size:
        chosen.append(next(filler))
    chosen = torch.tensor(sorted(chosen), dtype=torch.long)
    d2t = chosen - torch.arange(size)
    t2d = torch.zeros(vocab_size, dtype=torch.bool)
    t2d[chosen] = True
    covered = sum(c for t, c in counts.items() if t2d[t]) / max(1, sum(counts.values()))
    return d2t, t2d, covered


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sequences", type=int, default=384)
    parser.add_argument("--new-tokens", type=int, default=384)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--long-docs", type=int, default=240)
    parser.add_argument("--long-min", type=int, default=2048)
    parser.add_argument("--long-max", type=int, default=8192)
    parser.add_argument("--draft-vocab", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    if os.path.exists(args.out):
        print("make_data: %s exists" % args.out)
        return
    from transformers import AutoTokenizer

    from eagle3_draft import load_target

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(args.target)
    target = load_target(args.target, device)
    t0 = time.time()
    short = self_generate(target, tokenizer, prompts(tokenizer, args.sequences, rng),
                          args.new_tokens, args.batch, device)
    t1 = time.time()
    docs = synthetic_docs.make_documents(tokenizer, args.long_docs, args.long_min, args.long_max,
                                         args.seed + 1)
    long_ids = [d["ids"] for d in docs]
    t2 = time.time()
    d2t, t2d, covered = draft_vocab(short + long_ids, target.config.vocab_size, args.draft_vocab)
    tmp = args.out + ".tmp"
    torch.save({"short": short, "long": long_ids, "long_kinds": [d["kind"] for d in docs],
                "d2t": d2t, "t2d": t2d, "seed": args.seed}, tmp)
    os.replace(tmp, args.out)
    print("make_data: %d self-generated sequences (%d tokens, %.1fs), %d long documents "
          "(%d tokens, %.1fs); draft vocab %d covers %.4f of the data tokens" % (
              len(short), sum(map(len, short)), t1 - t0, len(long_ids), sum(map(len, long_ids)),
              t2 - t1, args.draft_vocab, covered))


if __name__ == "__main__":
    main()
