#!/usr/bin/env python3
"""Black-box tests of `specontext serve`: the real binary on 127.0.0.1 with the prepared default
model, driven by the official OpenAI Python SDK and plain urllib. Prints one PASS/FAIL line per
check and a summary; exits 1 on any failure and 77 when the default model is not prepared."""

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from daemon_process import DaemonProcess, default_model_path  # noqa: E402

SKIP = 77
API_KEY = "blackbox-key"
MAX_MODEL_LEN = 2048
MAX_BODY_BYTES = 65536
START_TIMEOUT_S = 120


class Server(DaemonProcess):
    """`specontext serve` on a free port with the test's key and limits."""

    def __init__(self, binary, extra_args):
        super().__init__([binary, "serve", "--host", "127.0.0.1", "--port", "0", "--api-key",
                          API_KEY, "--max-model-len", str(MAX_MODEL_LEN), "--kv-host-gib", "0.25",
                          "--max-body-bytes", str(MAX_BODY_BYTES), "--drain-timeout-s", "30",
                          "--log-level", "warn"] + extra_args, start_timeout_s=START_TIMEOUT_S)


def http(server, method, path, body=None, key=API_KEY, raw=None):
    """(status, headers, body text) of one request; errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def metrics_text(server):
    status, _, text = http(server, "GET", "/metrics")
    check(status == 200, f"/metrics {status}")
    return text


def metric(text, name, labels=""):
    """Sum of the samples of `name` whose labels contain `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and labels in line and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def metric_reaching(server, name, labels, at_least, timeout=10):
    """The metric once it reaches `at_least` (or after `timeout` s), and the scrape it came from.

    The engine counts a step's rows when the step ends, after its tokens went out, so a scrape
    right after the response may come before the last step is counted."""
    deadline = time.monotonic() + timeout
    while True:
        scrape = metrics_text(server)
        value = metric(scrape, name, labels)
        if value >= at_least or time.monotonic() > deadline:
            return value, scrape
        time.sleep(0.05)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Suite:
    def __init__(self, server):
        self.server = server
        self.client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY,
                                    max_retries=0, timeout=60)
        self.model = None

    # -- models, completions, chat ------------------------------------------------------------

    def test_models_list(self):
        models = self.client.models.list().data
        check(len(models) == 1, f"one model expected, got {models}")
        self.model = models[0].id
        check(self.model == "SmolLM2-135M-Instruct", f"model id {self.model}")
        check(models[0].model_extra.get("max_model_len") == MAX_MODEL_LEN, models[0])

    def test_completion(self):
        response = self.client.completions.create(model=self.model, prompt="The capital of France is",
                                                  max_tokens=8, temperature=0)
        check(response.object == "text_completion" and response.id.startswith("cmpl-"), response)
        choice = response.choices[0]
        check(choice.text and choice.finish_reason in ("stop", "length"), choice)
        usage = response.usage
        tokens = self.tokenize({"prompt": "The capital of France is"})
        check(usage.prompt_tokens == tokens["count"], f"{usage} vs {tokens}")
        check(0 < usage.completion_tokens <= 8, usage)
        check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage)
        check(usage.prompt_tokens_details is not None
              and usage.prompt_tokens_details.cached_tokens >= 0, usage)

        # The default max_tokens for completions is 16; token-id prompts and prompt lists work.
        by_ids = self.client.completions.create(model=self.model, prompt=tokens["tokens"],
                                                temperature=0, extra_body={"ignore_eos": True})
        check(by_ids.usage.completion_tokens == 16, by_ids.usage)
        check(by_ids.choices[0].finish_reason == "length", by_ids)
        listed = self.client.completions.create(model=self.model, prompt=["One, two,", "Red, green,"],
                                                max_tokens=2, temperature=0)
        check([c.index for c in listed.choices] == [0, 1], listed)

    def test_chat(self):
        response = self.chat(max_tokens=8)
        check(response.object == "chat.completion" and response.id.startswith("chatcmpl-"), response)
        message = response.choices[0].message
        check(message.role == "assistant" and message.content, message)
        expected = self.tokenize({"messages": self.messages(), "add_generation_prompt": True})
        check(response.usage.prompt_tokens == expected["count"], f"{response.usage} vs {expected}")

    def test_chat_template_options(self):
        messages = [{"role": "user", "content": "Name a colour."},
                    {"role": "assistant", "content": "My favourite colour is"}]
        options = {"add_generation_prompt": False, "continue_final_message": True,
                   "chat_template_kwargs": {"unused_flag": True}}
        response = self.client.chat.completions.create(model=self.model, messages=messages,
                                                       max_tokens=3, temperature=0,
                                                       extra_body=options)
        expected = self.tokenize({"messages": messages, **options})
        check(response.usage.prompt_tokens == expected["count"], f"{response.usage} vs {expected}")
        rendered = http(self.server, "POST", "/detokenize", {"tokens": expected["tokens"]})[2]
        check(json.loads(rendered)["prompt"].endswith("My favourite colour is"), rendered)

    def test_chat_streaming(self):
        whole = self.chat(max_tokens=10).choices[0].message.content
        chunks = list(self.client.chat.completions.create(
            model=self.model, messages=self.messages(), max_tokens=10, temperature=0, stream=True,
            stream_options={"include_usage": True}))
        check(len({c.id for c in chunks}) == 1, "chunks share one id")
        check(all(c.object == "chat.completion.chunk" for c in chunks), "chunk object")
        check(chunks[0].choices[0].delta.role == "assistant", f"role first: {chunks[0]}")
        with_choices = [c for c in chunks if c.choices]
        finishes = [c.choices[0].finish_reason for c in with_choices]
        check(finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1]),
              f"finish_reason only on the last choice chunk: {finishes}")
        contents = [c.choices[0].delta.content for c in with_choices[1:-1]]
        check(all(contents), f"no empty content deltas: {contents}")
        text = "".join(c.choices[0].delta.content or "" for c in with_choices)
        check(text == whole, f"streamed {text!r} != {whole!r}")
        usage_chunk = chunks[-1]
        check(not usage_chunk.choices and usage_chunk.usage.completion_tokens > 0, usage_chunk)
        check(all(c.usage is None for c in chunks[:-1]), "usage only on the last chunk")

    def test_completion_streaming(self):
        kwargs = dict(model=self.model, prompt="Once upon a time", max_tokens=10, temperature=0)
        whole = self.client.completions.create(**kwargs).choices[0].text
        chunks = list(self.client.completions.create(stream=True, **kwargs))
        check(all(c.object == "text_completion" for c in chunks), "chunk object")
        check(chunks[-1].choices[0].finish_reason in ("stop", "length"), chunks[-1])
        check(all(c.choices[0].finish_reason is None for c in chunks[:-1]), "early finish_reason")
        text = "".join(c.choices[0].text for c in chunks)
        check(text == whole, f"streamed {text!r} != {whole!r}")

    def test_n_choices_and_seeds(self):
        kwargs = dict(model=self.model, prompt="My favourite colour is", max_tokens=6,
                      temperature=1.0, n=3, seed=1234, extra_body={"ignore_eos": True})
        first = self.client.completions.create(**kwargs)
        check([c.index for c in first.choices] == [0, 1, 2], first)
        check(first.usage.completion_tokens == 18, first.usage)
        again = self.client.completions.create(**kwargs)
        check([c.text for c in first.choices] == [c.text for c in again.choices],
              "same seed, same choices")
        # Streaming delivers the same n choices, each ending once.
        chunks = list(self.client.completions.create(stream=True, **kwargs))
        texts = ["", "", ""]
        finished = []
        for chunk in chunks:
            for choice in chunk.choices:
                texts[choice.index] += choice.text
                if choice.finish_reason:
                    finished.append(choice.index)
        check(sorted(finished) == [0, 1, 2], f"finishes {finished}")
        check(texts == [c.text for c in first.choices], f"{texts} vs {first.choices}")

    def test_seeded_chat(self):
        one = self.chat(max_tokens=8, temperature=1.0, seed=7).choices[0].message.content
        two = self.chat(max_tokens=8, temperature=1.0, seed=7).choices[0].message.content
        check(one == two, f"{one!r} != {two!r}")

    # -- logprobs and stop strings -------------------------------------------------------------

    def test_completion_logprobs(self):
        response = self.client.completions.create(model=self.model, prompt="1, 2, 3,", max_tokens=6,
                                                  temperature=0, logprobs=2,
                                                  extra_body={"ignore_eos": True})
        choice = response.choices[0]
        lp = choice.logprobs
        check(len(lp.tokens) == 6 == len(lp.token_logprobs) == len(lp.top_logprobs), lp)
        check("".join(lp.tokens) == choice.text, f"{lp.tokens} vs {choice.text!r}")
        check(lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0, lp.text_offset)
        for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            check(logprob <= 0 and len(top) == 2, top)
            # Greedy: the chosen token is the most likely one.
            check(abs(max(top.values()) - logprob) < 1e-4 and token in top, f"{token} {top}")

    def test_chat_logprobs(self):
        response = self.chat(max_tokens=5, logprobs=True, top_logprobs=3)
        content = response.choices[0].logprobs.content
        check(len(content) == response.usage.completion_tokens, content)
        for entry in content:
            check(len(entry.top_logprobs) == 3 and entry.logprob <= 0, entry)
            check(entry.top_logprobs[0].token == entry.token, entry)
            check(entry.bytes == list(entry.token.encode()), entry)

    def test_stop_strings(self):
        kwargs = dict(model=self.model, prompt="Count: 1, 2, 3, 4,", max_tokens=12, temperature=0,
                      extra_body={"ignore_eos": True})
        full = self.client.completions.create(**kwargs).choices[0].text
        check(len(full) >= 6, f"need some text to cut: {full!r}")
        stop = full[len(full) // 2:len(full) // 2 + 2]
        expected = full[:full.find(stop)]
        cut = self.client.completions.create(stop=[stop], **kwargs).choices[0]
        check(cut.text == expected and cut.finish_reason == "stop", f"{cut} vs {expected!r}")
        streamed = list(self.client.completions.create(stop=[stop], stream=True, **kwargs))
        check("".join(c.choices[0].text for c in streamed) == expected, streamed)
        check(streamed[-1].choices[0].finish_reason == "stop", streamed[-1])

    # -- errors and auth --------------------------------------------------------------------------

    def test_errors(self):
        self.expect_error(openai.BadRequestError, 400,
                          lambda: self.chat(max_tokens=4, temperature=5))
        error = self.expect_error(openai.BadRequestError, 400,
                                  lambda: self.chat(max_tokens=MAX_MODEL_LEN * 2))
        check("maximum context length" in error.message, error.message)
        self.expect_error(openai.BadRequestError, 400,
                          lambda: self.client.chat.completions.create(model=self.model, messages=[]))
        self.expect_error(openai.NotFoundError, 404,
                          lambda: self.client.completions.create(model="no-such-model", prompt="x"))
        wrong = openai.OpenAI(base_url=self.server.base_url + "/v1", api_key="wrong", max_retries=0)
        self.expect_error(openai.AuthenticationError, 401, lambda: wrong.models.list())
        status, _, body = http(self.server, "POST", "/v1/completions",
                               raw=json.dumps({"prompt": "x" * (MAX_BODY_BYTES * 2)}).encode())
        check(status == 413, f"oversized body: {status} {body}")
        status, _, body = http(self.server, "GET", "/health", key=None)
        check(status == 200, f"probes need no key: {status} {body}")
        status, _, body = http(self.server, "POST", "/v1/completions", body={"prompt": "{"}, key=None)
        check(status == 401 and json.loads(body)["error"]["type"] == "authentication_error", body)

    def expect_error(self, error_type, status, call):
        try:
            call()
        except error_type as error:
            check(error.status_code == status, f"{error_type.__name__}: {error.status_code}")
            check(set(error.body) >= {"message", "type", "param", "code"}, error.body)
            return error
        raise AssertionError(f"expected {error_type.__name__}")

    # -- tokenize, cancellation, metrics ----------------------------------------------------------

    def test_tokenize_round_trip(self):
        text = "Hello world, ça va? 日本語"
        tokens = self.tokenize({"prompt": text, "add_special_tokens": False})
        check(tokens["count"] == len(tokens["tokens"]) > 0, tokens)
        check(tokens["max_model_len"] == MAX_MODEL_LEN, tokens)
        status, _, body = http(self.server, "POST", "/detokenize", {"tokens": tokens["tokens"]})
        check(status == 200 and json.loads(body)["prompt"] == text, body)
        status, _, body = http(self.server, "POST", "/detokenize", {"tokens": [10 ** 9]})
        check(status == 400, f"out-of-vocabulary id: {status} {body}")

    def test_client_disconnect_cancels(self):
        before = self.metrics()
        stream = self.client.completions.create(model=self.model, prompt="Tell me a story",
                                                max_tokens=400, temperature=0, stream=True,
                                                extra_body={"ignore_eos": True})
        for i, _ in enumerate(stream):
            if i == 1:
                break
        stream.close()
        deadline = time.monotonic() + 10
        while True:
            after = self.metrics()
            cancelled = (metric(after, "specontext_request_cancellations_total")
                         - metric(before, "specontext_request_cancellations_total"))
            aborted = (metric(after, "vllm:request_success_total", 'finished_reason="abort"')
                       - metric(before, "vllm:request_success_total", 'finished_reason="abort"'))
            if cancelled == 1 and aborted == 1:
                break
            check(time.monotonic() < deadline, f"cancelled {cancelled}, aborted {aborted}")
            time.sleep(0.1)
        check(self.client.completions.create(model=self.model, prompt="Hi", max_tokens=2).choices,
              "server answers after a disconnect")

    def test_metrics_promtool(self):
        text = self.metrics()
        check(metric(text, "vllm:inter_token_latency_seconds_count") > 0, "inter-token latency")
        check(metric(text, "vllm:generation_tokens_total") > 0, "generation tokens")
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                                text=True, check=False)
        check(result.returncode in (0, 3), f"promtool failed:\n{result.stdout}{result.stderr}")
        for line in (result.stdout + result.stderr).splitlines():
            check(not line.strip() or (line.startswith("vllm:")
                                       and line.endswith("metric names should not contain ':'")),
                  f"promtool: {line}")

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def messages():
        return [{"role": "user", "content": "What is the capital of France?"}]

    def chat(self, **kwargs):
        kwargs.setdefault("temperature", 0)
        return self.client.chat.completions.create(model=self.model, messages=self.messages(),
                                                   **kwargs)

    def tokenize(self, body):
        status, _, text = http(self.server, "POST", "/tokenize", body)
        check(status == 200, f"/tokenize {status}: {text}")
        return json.loads(text)

    def metrics(self):
        return metrics_text(self.server)


def test_sigterm_drains(server):
    """SIGTERM: the running stream finishes, new requests get 503 + Retry-After, exit code 0."""
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0)
    stream = client.completions.create(prompt="Let me explain", max_tokens=48, temperature=0,
                                       stream=True, model="SmolLM2-135M-Instruct",
                                       extra_body={"ignore_eos": True})
    chunks = [next(iter(stream))]
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    status, headers, body = http(server, "POST", "/v1/completions", {"prompt": "x", "max_tokens": 1})
    check(status == 503 and headers.get("Retry-After"), f"during drain: {status} {body}")
    chunks.extend(stream)
    check(chunks[-1].choices[0].finish_reason == "length", f"drained stream: {chunks[-1]}")
    check(server.process.wait(timeout=30) == 0, f"exit code {server.process.returncode}")


def test_full_queue_answers_429(binary):
    """A full queue refuses with 429 and Retry-After; the SDK raises RateLimitError."""
    server = Server(binary, ["--max-num-seqs", "1", "--max-waiting", "1"])
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0)
        outcomes = []

        def one():
            try:
                client.completions.create(model="SmolLM2-135M-Instruct", prompt="Hello",
                                          max_tokens=24, extra_body={"ignore_eos": True})
                outcomes.append("ok")
            except openai.RateLimitError as error:
                outcomes.append(error.response.headers.get("Retry-After"))

        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        check(outcomes.count("ok") >= 1 and "1" in outcomes, f"outcomes {outcomes}")
    finally:
        server.kill()


def test_specontext_serving(binary):
    """A server in specontext mode with the shipped retrieval head (default settings but a budget
    shorter than the prompt, and layer 0 dense): decode steps run sparse, a request may ask for
    dense, and a budget covering the prompt gives dense attention's greedy text exactly."""
    head = Path(__file__).resolve().parents[2] / "models" / "SmolLM2-135M-Instruct-eagle3"
    server = Server(binary, ["--attention", "specontext", "--draft-model", str(head),
                             "--sparse-budget", "32", "--sparse-dense-layers", "1"])
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0)
        prompt = ("The museum opened in the spring. Its first hall shows maps of the old harbour, "
                  "the second holds ship models, and the third tells how the town grew around "
                  "the river. Visitors often ask which hall is the oldest. The answer is")

        def complete(**extra):
            done = client.completions.create(model="SmolLM2-135M-Instruct", prompt=prompt,
                                             max_tokens=12, temperature=0,
                                             extra_body={"ignore_eos": True, **extra})
            return done.choices[0].text

        sparse = complete()
        check(len(sparse) > 0, "empty sparse completion")
        sparse_rows, scrape = metric_reaching(server, "specontext_decode_rows_total",
                                              'attention="sparse"', 11)
        check(sparse_rows >= 11, f"{sparse_rows} sparse decode rows for 12 tokens past B")
        check(metric(scrape, "specontext_retrieval_seconds_count") > 0, "no retrieval time")
        dense = complete(attention="dense")
        check(complete(sparse_budget=4096) == dense, "a budget beyond the prompt must equal dense")
        # Every sparse step less sure than probability 1 runs again densely: dense's text.
        check(complete(sparse_redo_probability=1.0) == dense,
              "re-running every sparse step densely must equal dense")
        redone, _ = metric_reaching(server, "specontext_decode_rows_total",
                                    'attention="dense_redo"', 11)
        check(redone >= 11, f"{redone} re-run rows counted for 12 tokens that asked for them")
    finally:
        server.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    if not default_model_path().is_dir():
        print(f"SKIP: default model not prepared at {default_model_path()} "
              "(run scripts/prepare_default_model.sh)")
        return SKIP

    started = time.monotonic()
    results = []
    server = Server(args.binary, [])
    try:
        suite = Suite(server)
        names = [n for n in Suite.__dict__ if n.startswith("test_")]
        checks = [(n, getattr(suite, n)) for n in names]
        checks.append(("test_sigterm_drains", lambda: test_sigterm_drains(server)))
        checks.append(("test_full_queue_answers_429",
                       lambda: test_full_queue_answers_429(args.binary)))
        checks.append(("test_specontext_serving", lambda: test_specontext_serving(args.binary)))
        for name, run in checks:
            begin = time.monotonic()
            try:
                run()
                results.append((name, None))
                print(f"PASS {name} ({time.monotonic() - begin:.1f} s)", flush=True)
            except Exception as error:  # every failure is reported, then the next check runs
                results.append((name, error))
                print(f"FAIL {name}: {error}", flush=True)
                traceback.print_exc()
    finally:
        server.kill()
    failed = [name for name, error in results if error is not None]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed "
          f"in {time.monotonic() - started:.1f} s")
    if failed:
        print("failed: " + ", ".join(failed))
        print("server log tail:\n" + server.tail())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
