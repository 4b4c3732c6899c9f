"""Long synthetic retrieval documents for distilling and evaluating the retrieval head.

The kinds follow `specontext eval`'s tasks (passkey, needle-in-a-haystack with key/value pairs,
multi-key needles, variable tracking, KV retrieval over UUID pairs, common-words lists). Every
document is built from a seeded random.Random, so the same seed gives the same documents.

A document is a dict {"kind", "ids" (token ids, the question at the end), "answer" (text),
"prompt_ids" (ids up to where the answer starts)}. Lengths are in tokens of the target's
tokenizer: the filler is trimmed so that len(ids) <= length.
"""
import random
import string
import uuid

KINDS = ("passkey", "niah_single", "niah_multikey", "variable_tracking", "kv_retrieval",
         "common_words")

_NOUNS = ("river mountain city garden window teacher music forest engine letter market island "
          "bridge painter doctor village winter summer ocean planet kitchen library student "
          "farmer castle station harbor desert valley lantern mirror").split()
_VERBS = ("walks finds builds carries watches paints follows opens remembers crosses visits "
          "leaves answers writes greets").split()
_ADJS = ("quiet bright old small green heavy distant gentle strange golden busy narrow "
         "ancient warm").split()
_WORDS = ("apple stone cloud paper silver tiger candle orange shadow piano rocket bottle "
          "feather pillow marble thunder violet meadow copper saddle walnut compass velvet "
          "ember glacier harvest").split()


def _filler_sentence(rng):
    return "The %s %s %s the %s %s near the %s." % (
        rng.choice(_ADJS), rng.choice(_NOUNS), rng.choice(_VERBS), rng.choice(_ADJS),
        rng.choice(_NOUNS), rng.choice(_NOUNS))


def _digits(rng, n):
    return "".join(rng.choice(string.digits[1:] if i == 0 else string.digits) for i in range(n))


def _uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _word_key(rng):
    return "-".join(rng.choice(_ADJS + _NOUNS) for _ in range(2))


def _spec(kind, length, rng):
    """(header, needles, question, answer): needles are sentences spread through the filler."""
    if kind == "passkey":
        key = _digits(rng, 5)
        return ("There is an important pass key hidden inside a lot of irrelevant text. Find it "
                "and memorize it.\n",
                ["The pass key is %s. Remember it. %s is the pass key." % (key, key)],
                "\nWhat is the pass key? The pass key is", " " + key)
    if kind in ("niah_single", "niah_multikey"):
        keys = [_word_key(rng) for _ in range(1 if kind == "niah_single" else 4)]
        values = [_digits(rng, 7) for _ in keys]
        asked = rng.randrange(len(keys))
        return ("Some special magic numbers are hidden inside the following text. Memorize them.\n",
                ["One of the special magic numbers for %s is: %s." % (k, v)
                 for k, v in zip(keys, values)],
                "\nWhat is the special magic number for %s mentioned in the text? The special "
                "magic number for %s mentioned in the text is" % (keys[asked], keys[asked]),
                " " + values[asked])
    if kind == "variable_tracking":
        names = ["".join(rng.choice(string.ascii_uppercase) for _ in range(5)) for _ in range(5)]
        value = _digits(rng, 5)
        chain = ["VAR %s = %s." % (names[0], value)]
        chain += ["VAR %s = VAR %s." % (names[i], names[i - 1]) for i in range(1, len(names))]
        return ("Memorize and track the chain of variable assignments hidden in the text.\n",
                chain,
                "\nQuestion: find all variables that are assigned the value %s. Answer: the "
                "variables are" % value, " " + " ".join(names))
    if kind == "kv_retrieval":
        pairs = [(_uuid(rng), _uuid(rng)) for _ in range(min(12, max(2, length // 400)))]
        asked = rng.randrange(len(pairs))
        return ("Extract the value corresponding to the specified key in the JSON object.\n",
                ['"%s": "%s",' % p for p in pairs],
                '\nKey: "%s"\nThe value associated with the specified key is:' % pairs[asked][0],
                ' "%s"' % pairs[asked][1])
    if kind == "common_words":
        common = rng.sample(_WORDS, 5)
        rare = [w for w in _WORDS if w not in common]
        reps = min(12, max(3, length // 500))
        listed = common * reps + [rng.choice(rare) for _ in range(3 * reps)]
        rng.shuffle(listed)
        lines = ["%d. %s" % (i + 1, w) for i, w in enumerate(listed)]
        return ("Below is a numbered list of words. Some words appear many times.\n",
                ["\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)],
                "\nQuestion: what are the 5 most common words in the list above? Answer: the "
                "most common words are", " " + ", ".join(common))
    raise ValueError("unknown document kind " + kind)


def make_document(tokenizer, kind, length, rng):
    header, needles, question, answer = _spec(kind, length, rng)
    head_ids = tokenizer.encode(header, add_special_tokens=False)
    question_ids = tokenizer.encode(question, add_special_tokens=False)
    answer_ids = tokenizer.encode(answer, add_special_tokens=False)
    needle_ids = [tokenizer.encode(" " + n + " ", add_special_tokens=False) for n in needles]
    budget = length - len(head_ids) - len(question_ids) - len(answer_ids) - sum(map(len, needle_ids))
    if budget < 16:
        raise ValueError("length %d is too short for a %s document" % (length, kind))
    # Tokenize a sentence pool once and reuse it: tokenizing 8K tokens of text per document
    # would dominate the generation time.
    pool = [tokenizer.encode(" " + _filler_sentence(rng), add_special_tokens=False)
            for _ in range(64)]
    sentences, used = [], 0
    while True:
        ids = pool[rng.randrange(len(pool))]
        if used + len(ids) > budget:
            break
        sentences.append(ids)
        used += len(ids)
    # Needles go between sentences, at uniformly drawn depths.
    slots = sorted(rng.randrange(len(sentences) + 1) for _ in needle_ids)
    body, last = [], 0
    for slot, ids in zip(slots, needle_ids):
        body += [t for sentence in sentences[last:slot] for t in sentence] + ids
        last = slot
    body += [t for sentence in sentences[last:] for t in sentence]
    prompt_ids = head_ids + body + question_ids
    return {"kind": kind, "ids": prompt_ids + answer_ids, "prompt_ids": prompt_ids,
            "answer": answer.strip()}


def make_documents(tokenizer, count, min_len, max_len, seed, kinds=KINDS):
    rng = random.Random(seed)
    return [make_document(tokenizer, kinds[i % len(kinds)], rng.randint(min_len, max_len), rng)
            for i in range(count)]


if __name__ == "__main__":
    import argparse

    from transformers import AutoTokenizer

    parser = argparse.ArgumentParser(
        description="print a few synthetic documents, or write one document's prompt as text")
    parser.add_argument("model_dir")
    parser.add_argument("--length", type=int, default=600)
    parser.add_argument("--kind", choices=KINDS, help="write one document of this kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-out",
                        help="with --kind: the prompt text goes here (for `specontext generate "
                        "--raw --prompt-file`), the expected answer to stdout")
    args = parser.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    if args.kind:
        doc = make_document(tok, args.kind, args.length, random.Random(args.seed))
        with open(args.prompt_out, "w") as f:
            f.write(tok.decode(doc["prompt_ids"]))
        print(doc["answer"])
    else:
        for doc in make_documents(tok, len(KINDS), args.length, args.length, args.seed):
            print("==", doc["kind"], len(doc["ids"]), "answer:", doc["answer"])
            print(tok.decode(doc["ids"])[:300], "...", tok.decode(doc["ids"])[-200:])
