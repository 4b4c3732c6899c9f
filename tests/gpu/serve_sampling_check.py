#!/usr/bin/env python3
"""Sampling through the daemon on the GPU: every kind of sampling parameter in one batch.

Starts `specontext serve --backend cuda` on 127.0.0.1, sends concurrent completions that mix
greedy, temperature, top-k, top-p, min-p, penalties, min_tokens and logprobs (so one step holds
rows the GPU summary settles and rows that fall back to the whole logits row), and checks each
answer: 200, the asked-for token count, finite non-positive logprobs, and that two copies of a
seeded request sent together agree exactly (sent again later, beside other batch sizes, a seeded
request is reported, not required, to repeat). Exits 0 when all pass; 77 (skipped) without a GPU.

  tests/gpu/serve_sampling_check.py --binary BUNDLE/bin/specontext --model MODEL_DIR
"""
import argparse
import concurrent.futures
import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

CASES = [
    {"temperature": 0},
    {"temperature": 0, "logprobs": 5},
    {"temperature": 0, "repetition_penalty": 1.5},
    {"temperature": 0, "presence_penalty": 1.5, "frequency_penalty": 0.5},
    {"temperature": 0.8, "seed": 11},
    {"temperature": 1.0, "top_p": 0.9, "seed": 12},
    {"temperature": 0.7, "top_k": 20, "seed": 13, "logprobs": 3},
    {"temperature": 1.0, "min_p": 0.05, "seed": 14},
    {"temperature": 1.5, "seed": 15},  # a flat distribution: whole-row draws
    {"temperature": 1.0, "top_k": 3000, "seed": 16},  # deeper than a summary
    {"temperature": 0.9, "min_tokens": 12, "repetition_penalty": 1.2, "seed": 17},
    {"temperature": 1.2, "presence_penalty": -1.0, "seed": 18, "logprobs": 2},
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {"error": e.read().decode(errors="replace")}


def check(port, model, case, max_tokens):
    body = {"model": model, "prompt": "Once upon a time, in a small village by the sea,",
            "max_tokens": max_tokens, "ignore_eos": True, **case}
    with concurrent.futures.ThreadPoolExecutor(2) as pair:
        # A seeded request twice at once: both copies run in the same steps, so their logits are
        # the same bits and the draws must be too.
        twin = pair.submit(post, port, body) if "seed" in case else None
        status, reply = post(port, body)
        twin_reply = twin.result()[1] if twin else None
    if status != 200:
        return "", [f"status {status}: {reply['error'][:200]}"], None
    problems = []
    choice = reply["choices"][0]
    if reply["usage"]["completion_tokens"] != max_tokens:
        problems.append(f"{reply['usage']['completion_tokens']} tokens, asked {max_tokens}")
    if "logprobs" in case:
        lp = choice["logprobs"]["token_logprobs"]
        if len(lp) != max_tokens or not all(math.isfinite(x) and x <= 1e-6 for x in lp):
            problems.append(f"bad logprobs {lp[:4]}")
        # The most likely tokens, and the sampled one when it is not among them.
        widths = {len(t) for t in choice["logprobs"]["top_logprobs"]}
        if not widths <= {case["logprobs"], case["logprobs"] + 1}:
            problems.append(f"top_logprobs of widths {widths}")
    repeated = None
    if "seed" in case:
        if twin_reply.get("choices", [{}])[0].get("text") != choice["text"]:
            problems.append("two copies of the seeded request sent together differ")
        # Sent again later it runs beside other requests, in batches of other sizes, whose
        # kernels round differently (the GEMV up to 8 rows, cuBLAS above): reported, not
        # required.
        _, again = post(port, body)
        repeated = again["choices"][0]["text"] == choice["text"]
    return choice["text"], problems, repeated


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--backend", default="cuda", help="cuda, or cpu to check the check itself")
    args = ap.parse_args()
    if args.backend == "cuda" and shutil.which("nvidia-smi") is None:
        print("no GPU: skipped")
        return 77
    port = free_port()
    daemon = subprocess.Popen([args.binary, "serve", "--model", args.model, "--backend", args.backend,
                               "--host", "127.0.0.1", "--port", str(port), "--grpc-port", "-1"])
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2)
                break
            except OSError:
                if daemon.poll() is not None:
                    print("the daemon exited")
                    return 1
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as r:
            model = json.loads(r.read())["data"][0]["id"]
        failures = 0
        with concurrent.futures.ThreadPoolExecutor(len(CASES)) as pool:
            results = list(pool.map(lambda c: check(port, model, c, args.max_tokens), CASES))
        for case, (text, problems, _) in zip(CASES, results):
            failures += bool(problems)
            print(("FAIL " if problems else "ok   ") + json.dumps(case), problems or "",
                  repr(text[:60]))
        later = [r for _, _, r in results if r is not None]
        print(f"{len(CASES) - failures} of {len(CASES)} sampling cases passed; "
              f"{sum(later)} of {len(later)} seeded requests repeated when sent again later")
        return 1 if failures else 0
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
