#!/usr/bin/env python3
"""Black-box test of specontext-loadtest: starts the real `specontext serve` on 127.0.0.1 with the
prepared default model, runs the load generator with a small bounded workload, then runs NVIDIA's
AIPerf with the same workload against the same daemon (daemon and clients on separate CPUs),
checks that both sent and received exactly the workload's tokens, and that their TTFT and ITL
medians and output throughput agree within 15% (TPOT is printed too). Exits 1 on any failure, 77 when the default model is not prepared;
the AIPerf half is skipped (with a message) when `aiperf` is not in the .venv."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from daemon_process import DaemonProcess, default_model_path  # noqa: E402

SKIP = 77
START_TIMEOUT_S = 120
TOLERANCE = 0.15
# Tiny on purpose: the CPU daemon generates a few dozen tokens per second in total.
# One request at a time: with two, pairs arrive together and one of each pair waits for the
# other's prefill, so TTFT (and TPOT) split into two equal modes and a median lands on either
# mode by chance (docs/loadtest.md).
CONCURRENCY = 1
REQUESTS = 8
# The daemon and the clients on separate CPUs: AIPerf's own processes are far heavier than our
# client's, and sharing the daemon's CPUs they would slow it down while AIPerf measures it, so
# the two tools would time different daemons.
_CPUS = sorted(os.sched_getaffinity(0))
DAEMON_CPUS = ["taskset", "-c", ",".join(map(str, _CPUS[:len(_CPUS) // 2]))] if len(_CPUS) > 1 else []
CLIENT_CPUS = ["taskset", "-c", ",".join(map(str, _CPUS[len(_CPUS) // 2:]))] if len(_CPUS) > 1 else []
INPUT_LEN = 64
OUTPUT_LEN = 16


def run_loadtest(loadtest, url, model_dir, out_dir, extra):
    report = out_dir / "loadtest.json"
    args = CLIENT_CPUS + [loadtest, "--base-url", url, "--tokenizer", str(model_dir),
            "--num-requests", str(REQUESTS), "--max-concurrency", str(CONCURRENCY),
            "--input-len", str(INPUT_LEN), "--output-len", str(OUTPUT_LEN),
            "--warmup-requests", "1", "--request-timeout", "120",
            "--output-json", str(report)] + extra
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=240)
    print(result.stdout)
    if result.returncode != 0:
        raise AssertionError(f"specontext-loadtest exited {result.returncode}: {result.stderr}")
    print(f"specontext-loadtest took {time.monotonic() - started:.1f} s")
    return json.loads(report.read_text())


def check_own_report(report):
    assert report["failed"] == 0, f"failed requests: {report['errors']}"
    assert report["completed"] == REQUESTS, report["completed"]
    assert report["total_input_tokens"] == REQUESTS * INPUT_LEN, report["total_input_tokens"]
    assert report["total_output_tokens"] == REQUESTS * OUTPUT_LEN, report["total_output_tokens"]
    assert report["itl_ms"]["count"] == REQUESTS * (OUTPUT_LEN - 1), report["itl_ms"]["count"]
    assert report["tpot_ms"]["count"] == REQUESTS
    for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        summary = report[name]
        assert 0 < summary["min"] <= summary["median"] <= summary["p99"] <= summary["max"], name
    assert report["e2el_ms"]["median"] > report["ttft_ms"]["median"]
    assert report["output_throughput"] > 0
    print("PASS loadtest report is complete and exact")


def run_aiperf(aiperf, url, model_dir, model, out_dir):
    artifacts = out_dir / "aiperf"
    # Few AIPerf processes: they share the client CPUs with nothing else, but fewer start faster.
    args = CLIENT_CPUS + [aiperf, "profile", "--workers-max", "1",
            "--record-processors", "1", "--model", model, "--url", url,
            "--endpoint-type", "completions", "--streaming", "--tokenizer", str(model_dir),
            "--synthetic-input-tokens-mean", str(INPUT_LEN), "--synthetic-input-tokens-stddev", "0",
            "--output-tokens-mean", str(OUTPUT_LEN), "--output-tokens-stddev", "0",
            "--extra-inputs", "ignore_eos:true", "--use-server-token-count",
            "--concurrency", str(CONCURRENCY), "--request-count", str(REQUESTS),
            "--warmup-request-count", "1", "--random-seed", "1", "--ui-type", "none",
            "--output-artifact-dir", str(artifacts)]
    env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1")
    started = time.monotonic()
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env,
                            cwd=out_dir)
    if result.returncode != 0:
        raise AssertionError(f"aiperf exited {result.returncode}:\n{result.stdout[-3000:]}"
                             f"\n{result.stderr[-3000:]}")
    print(f"aiperf took {time.monotonic() - started:.1f} s")
    return json.loads((artifacts / "profile_export_aiperf.json").read_text())


def bracket(first, second):
    mean = lambda a, b: (a + b) / 2
    return {
        "ttft_ms": {"median": mean(first["ttft_ms"]["median"], second["ttft_ms"]["median"])},
        "itl_ms": {"median": mean(first["itl_ms"]["median"], second["itl_ms"]["median"])},
        "tpot_ms": {"median": mean(first["tpot_ms"]["median"], second["tpot_ms"]["median"])},
        "output_throughput": mean(first["output_throughput"], second["output_throughput"]),
    }


def compare(ours, theirs):
    # AIPerf's "inter_token_latency" is per request (latency - TTFT) / (tokens - 1), our TPOT;
    # its "inter_chunk_latency" is every gap between content chunks, our ITL.
    # The last field: whether the agreement is enforced (TPOT is printed for reference only).
    pairs = [
        ("TTFT median (ms)", ours["ttft_ms"]["median"], theirs["time_to_first_token"]["p50"], True),
        ("ITL median (ms)", ours["itl_ms"]["median"], theirs["inter_chunk_latency"]["p50"], True),
        ("TPOT median (ms)", ours["tpot_ms"]["median"], theirs["inter_token_latency"]["p50"],
         False),
        ("output throughput (tok/s)", ours["output_throughput"],
         theirs["output_token_throughput"]["avg"], True),
    ]
    print(f"  input tokens per request: aiperf {theirs.get('input_sequence_length', {}).get('avg')}")
    failures = []
    for name, mine, reference, enforced in pairs:
        difference = abs(mine - reference) / reference
        verdict = "ok" if difference <= TOLERANCE else "DIFFERS"
        print(f"  {name:<28} loadtest {mine:10.2f}  aiperf {reference:10.2f}  "
              f"{difference * 100:5.1f}% {verdict}")
        if enforced and difference > TOLERANCE:
            failures.append(name)
    assert theirs["output_sequence_length"]["avg"] == OUTPUT_LEN
    assert theirs["input_sequence_length"]["avg"] == INPUT_LEN
    if failures:
        raise AssertionError(f"differ by more than {TOLERANCE:.0%}: {', '.join(failures)}")
    print(f"PASS loadtest and aiperf agree within {TOLERANCE:.0%}")


def check_no_prefix_hits(url):
    # Our second run repeats the first one's prompts: with the cache on they would hit.
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    hits = [line for line in text.splitlines() if line.startswith("vllm:prefix_cache_hits_total")]
    assert hits and float(hits[0].split()[-1]) == 0, f"prefix cache hits with it off: {hits}"
    print("PASS --prefix-caching false: no prefix cache hits")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--loadtest", required=True)
    parser.add_argument("--aiperf", required=True)
    args = parser.parse_args()
    # AIPerf runs in a scratch directory, so every path must stand on its own.
    args.binary, args.loadtest, args.aiperf = (
        str(Path(path).absolute()) for path in (args.binary, args.loadtest, args.aiperf))
    model_dir = default_model_path()
    if not (model_dir / "tokenizer.json").exists():
        print(f"SKIP: the default model is not prepared at {model_dir}")
        return SKIP
    # Without the prefix cache every prompt is prefilled in full: both tools reuse their seeded
    # prompts, and a run that finds them cached would time a different workload.
    server = DaemonProcess(DAEMON_CPUS + [args.binary, "serve", "--host", "127.0.0.1", "--port", "0",
                            "--log-level", "warn", "--prefix-caching", "false"],
                           start_timeout_s=START_TIMEOUT_S)
    url = server.base_url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp)
            ours = run_loadtest(args.loadtest, url, model_dir, out_dir, [])
            check_own_report(ours)
            if not Path(args.aiperf).exists():
                print(f"SKIP aiperf cross-check: {args.aiperf} missing "
                      "(.venv/bin/pip install -r requirements.txt)")
                return 0
            theirs = run_aiperf(args.aiperf, url, model_dir, ours["config"]["model"], out_dir)
            # Our tool runs again after AIPerf, and AIPerf is compared with the mean of the two
            # runs around it, so a daemon that drifts over the test does not read as the tools
            # disagreeing.
            (out_dir / "again").mkdir()
            again = run_loadtest(args.loadtest, url, model_dir, out_dir / "again", [])
            check_own_report(again)
            compare(bracket(ours, again), theirs)
            check_no_prefix_hits(url)
    except (AssertionError, RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"FAIL {error}")
        return 1
    finally:
        server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
