#!/usr/bin/env python3
"""The monitoring stack against the real daemon: `specontext serve` runs with the cpu-dev
overlay's config, environment and keys on 127.0.0.1; a real Prometheus on 127.0.0.1 scrapes it
every second as the ServiceMonitor describes and evaluates the PrometheusRule; a few short
streaming requests run for about 25 s. Every recording rule, every dashboard query (Grafana's
variables filled in), every dashboard variable and the KEDA trigger query must return data.
Exits 1 on a failure, 77 when Prometheus or the prepared default model is missing."""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import deploy_common as dc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from daemon_process import DaemonProcess, default_model_path  # noqa: E402

START_TIMEOUT_S = 120
LOAD_S = 25
WORKERS = 3
MAX_TOKENS = 16
POD = "specontext-0"
PROMPTS = ["Name a colour.", "Count to five.", "Say hello in French.", "What is two plus two?"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, key=None, timeout=10):
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


class Daemon:
    """`specontext serve` as the cpu-dev overlay configures it, moved to loopback."""

    def __init__(self, binary, model, objects, workdir):
        import yaml

        config_map = dc.one(objects, "ConfigMap", "specontext-config")
        secret = dc.one(objects, "Secret", "specontext-api-keys")["stringData"]
        container = dc.one(objects, "Deployment", "specontext")["spec"]["template"]["spec"][
            "containers"][0]
        config = workdir / "serve.yaml"
        config.write_text(config_map["data"]["serve.yaml"])
        self.served_name = yaml.safe_load(config.read_text())["served_model_name"]
        keys = workdir / "api-keys"
        keys.write_text(secret["api-keys"])
        self.client_key = secret["api-keys"].split()[0]
        self.monitoring_key = secret["monitoring-key"]
        env = dict(os.environ)
        env.update({e["name"]: e["value"] for e in container["env"] if "value" in e})
        env["SPECONTEXT_API_KEY"] = self.monitoring_key
        # Flags outrank the file and the environment: only the addresses and paths change.
        args = [binary] + container["args"][:1] + [
            "--config", str(config), "--host", "127.0.0.1", "--port", "0", "--model", str(model),
            "--api-key-file", str(keys), "--grpc-port", "-1"]
        self.daemon = DaemonProcess(args, env=env, log_path=workdir / "serve.log",
                                    start_timeout_s=START_TIMEOUT_S)
        self.process = self.daemon.process
        self.base_url = self.daemon.base_url

    def tail(self, lines=20):
        return self.daemon.tail(lines)

    def stop(self, timeout):
        """SIGTERM, as the kubelet sends it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


class Prometheus:
    """A Prometheus server on loopback whose scrape job is the ServiceMonitor's."""

    def __init__(self, monitor, rules, daemon, namespace, workdir):
        import yaml

        endpoint = monitor["spec"]["endpoints"][0]
        key_file = workdir / "monitoring-key"
        key_file.write_text(daemon.monitoring_key)
        rules_file = workdir / "specontext-rules.yml"
        rules_file.write_text(yaml.safe_dump(rules))
        target = urllib.parse.urlsplit(daemon.base_url).netloc
        # The operator names the job after the Service and adds these target labels.
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_file)],
            "scrape_configs": [{
                "job_name": "specontext",
                "metrics_path": endpoint["path"],
                "scheme": endpoint["scheme"],
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "authorization": {"type": endpoint["authorization"]["type"],
                                  "credentials_file": str(key_file)},
                "static_configs": [{"targets": [target], "labels": {
                    "namespace": namespace, "pod": POD, "service": "specontext",
                    "endpoint": endpoint["port"], "container": "specontext"}}],
            }],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(workdir / "prometheus.log", "w+")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config_file}",
             f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                get(self.url + "/-/ready", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.log.seek(0)
                    raise RuntimeError("prometheus did not start:\n" + self.log.read()[-3000:])
                time.sleep(0.2)

    def api(self, path, **params):
        body = json.loads(get(self.url + path + "?" + urllib.parse.urlencode(params, doseq=True)))
        if body["status"] != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.api("/api/v1/query", query=expr)["result"]

    def stop(self):
        self.process.terminate()
        self.process.wait(30)


def load(daemon, stop_at, errors, finished):
    """Streams short chat completions until stop_at; counts finished requests."""
    index = 0
    while time.monotonic() < stop_at:
        body = {"messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
                "max_tokens": MAX_TOKENS, "stream": True, "temperature": 0.7, "seed": index}
        index += 1
        request = urllib.request.Request(daemon.base_url + "/v1/chat/completions",
                                         data=json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {daemon.client_key}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
            if "data: [DONE]" not in text:
                errors.append(f"stream without [DONE]: {text[-200:]!r}")
            finished.append(1)
        except (urllib.error.URLError, ConnectionError) as error:
            errors.append(repr(error))


def unanswered(name, expr, pending, nan_only, scrape):
    """The verdict on one query: it needs data; NaN only passes when every histogram it reads
    has observed nothing (a quantile over no events)."""
    if name not in pending:
        return f"PASS {name}"
    samples = {}
    for line in scrape.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            metric = series.split("{")[0]
            samples[metric] = samples.get(metric, 0.0) + float(value)
    names = dc.metric_names(expr)
    if name in nan_only:
        counts = [samples.get(re.sub(r"_bucket$", "_count", n), -1) for n in names]
        if all(count == 0 for count in counts):
            return f"PASS {name} (NaN: the daemon observed no such event)"
        return f"FAIL {name}: NaN only, though the daemon observed events"
    return f"FAIL {name}: no data"


def queries_to_check(rules, board, scaled, variables):
    """name -> PromQL: recording rules, dashboard targets, the KEDA trigger."""
    checks = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                checks[f"recording rule {rule['record']}"] = rule["record"]
    for title, expr in dc.dashboard_queries(board):
        checks[f"panel {title!r}: {expr}"] = dc.substitute_grafana(expr, variables)
    checks["KEDA trigger"] = scaled["spec"]["triggers"][0]["metadata"]["query"]
    return checks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--model", default=str(default_model_path()))
    args = parser.parse_args()
    dc.require_tools("kubectl", "prometheus")
    try:
        import yaml  # noqa: F401
    except ImportError:
        dc.skip("PyYAML missing from .venv (.venv/bin/pip install -r requirements.txt)")
    if not (Path(args.model) / "config.json").exists():
        dc.skip(f"default model not prepared at {args.model} "
                "(scripts/prepare_default_model.sh)")

    dev = dc.render(dc.OVERLAYS / "cpu-dev")
    replicas = dc.render(dc.OVERLAYS / "replicas")
    scaled = dc.one(replicas, "ScaledObject")
    namespace = scaled["metadata"]["namespace"]
    rules = dc.rule_groups(replicas)
    failures = []

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        daemon = Daemon(args.binary, args.model, dev, workdir)
        prometheus = None
        try:
            prometheus = Prometheus(dc.one(replicas, "ServiceMonitor"), rules, daemon, namespace,
                                    workdir)
            variables = {"namespace": namespace, "model_name": daemon.served_name,
                         "__rate_interval": "5s", "datasource": "prometheus"}
            checks = queries_to_check(rules, dc.dashboard(), scaled, variables)
            errors, finished = [], []
            started = time.monotonic()
            workers = [threading.Thread(target=load, args=(daemon, started + LOAD_S, errors,
                                                           finished)) for _ in range(WORKERS)]
            for worker in workers:
                worker.start()

            # A query is answered once it returns a number; NaN (a quantile over a window with
            # no events) keeps it pending.
            pending, nan_only = dict(checks), set()
            time.sleep(6)
            while pending and time.monotonic() < started + LOAD_S + 3:
                for name, expr in list(pending.items()):
                    values = [r["value"][1] for r in prometheus.query(expr)]
                    if any(v != "NaN" for v in values):
                        del pending[name]
                        nan_only.discard(name)
                    elif values:
                        nan_only.add(name)
                time.sleep(1)
            for worker in workers:
                worker.join()

            print(f"load: {len(finished)} streamed requests, {len(errors)} errors")
            if errors or not finished:
                failures.append(f"load: {errors[:3]}")
            scrape = get(daemon.base_url + "/metrics", key=daemon.monitoring_key)
            for name, expr in checks.items():
                verdict = unanswered(name, expr, pending, nan_only, scrape)
                print(verdict)
                if verdict.startswith("FAIL"):
                    failures.append(verdict)

            for variable in dc.dashboard()["templating"]["list"]:
                match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)",
                                     variable.get("definition", ""))
                if not match:
                    continue
                selector = dc.substitute_grafana(match.group(1), variables)
                values = prometheus.api(f"/api/v1/label/{match.group(2)}/values",
                                        **{"match[]": selector})
                if variables[variable["name"]] in values:
                    print(f"PASS dashboard variable ${variable['name']}: {values}")
                else:
                    failures.append(f"variable {variable['name']}: {values}")
                    print(f"FAIL dashboard variable ${variable['name']}: {values}")

            for group in prometheus.api("/api/v1/rules")["groups"]:
                for rule in group["rules"]:
                    if rule["health"] != "ok":
                        failures.append(f"rule {rule['name']}: {rule.get('lastError')}")
                    if rule["type"] == "alerting" and rule["state"] == "firing":
                        failures.append(f"alert {rule['name']} fires on a healthy daemon")
            targets = prometheus.api("/api/v1/targets")["activeTargets"]
            if [t["health"] for t in targets] != ["up"]:
                failures.append(f"scrape targets: {targets}")
            print(f"PASS scrape target {[t['health'] for t in targets]}, rule health and state")
        finally:
            if prometheus:
                prometheus.stop()
            drain = int(os.environ.get("SPECONTEXT_DRAIN_TIMEOUT_S", "30"))
            status = daemon.stop(drain + 15)
            if status != 0:
                failures.append(f"daemon exit status after SIGTERM: {status}\n{daemon.tail()}")

    for failure in failures:
        print(f"FAIL {failure}")
    print("all checks passed" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
