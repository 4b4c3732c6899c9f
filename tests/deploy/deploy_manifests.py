#!/usr/bin/env python3
"""Static checks of deploy/: every Kustomize overlay renders and its core objects validate
against the Kubernetes 1.30 and newest schemas that kubernetes-validate ships; the objects of
CRDs it has no schema for (ServiceMonitor, PrometheusRule, KEDA ScaledObject) are checked here
field by field; the rules pass `promtool check rules` and the alert unit tests; the dashboard's
queries read only metrics the daemon declares. Prints one PASS/FAIL line per check; exits 1 on
any failure, 77 when a tool is missing."""

import argparse
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import deploy_common as dc

SCHEMA_VERSIONS = ("1.30.0", None)  # None: the newest kubernetes-validate knows
CRD_GROUPS = ("monitoring.coreos.com/", "keda.sh/")
GPU_RESOURCE = "nvidia.com/gpu"


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def pod_spec(objects):
    return dc.one(objects, "Deployment", "specontext")["spec"]["template"]["spec"]


def container(objects):
    containers = pod_spec(objects)["containers"]
    check(len(containers) == 1, f"one container expected, got {len(containers)}")
    return containers[0]


def serve_config(objects):
    import yaml

    return yaml.safe_load(dc.one(objects, "ConfigMap", "specontext-config")["data"]["serve.yaml"])


def plain_env(objects):
    return {e["name"]: e["value"] for e in container(objects).get("env", []) if "value" in e}


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class Suite:
    def __init__(self, binary):
        self.binary = binary
        self.renders = {overlay.name: dc.render(overlay) for overlay in dc.overlays()}

    # -- schemas ------------------------------------------------------------------------------

    def test_core_objects_match_schemas(self):
        import kubernetes_validate

        latest = kubernetes_validate.utils.latest_version()
        for name, objects in self.renders.items():
            for obj in objects:
                if obj["apiVersion"].startswith(CRD_GROUPS):
                    continue
                for version in SCHEMA_VERSIONS:
                    try:
                        kubernetes_validate.validate(obj, version or latest, strict=True)
                    except kubernetes_validate.ValidationError as error:
                        raise AssertionError(
                            f"{name}: {obj['kind']} {obj['metadata']['name']} is not valid "
                            f"Kubernetes {version or latest}: {error.message} at "
                            f"{'/'.join(str(p) for p in error.path)}") from None

    def test_kinds_per_overlay(self):
        want = {
            "cpu-dev": {"ConfigMap", "Secret", "Service", "Deployment", "PodDisruptionBudget"},
            "gpu": {"ConfigMap", "Secret", "Service", "Deployment", "PodDisruptionBudget",
                    "PersistentVolumeClaim", "ServiceMonitor", "PrometheusRule"},
        }
        want["replicas"] = want["gpu"] | {"ScaledObject"}
        check(set(self.renders) == set(want), f"overlays {sorted(self.renders)}")
        for name, objects in self.renders.items():
            kinds = [o["kind"] for o in objects]
            check(sorted(kinds) == sorted(want[name]), f"{name}: kinds {sorted(kinds)}")

    # -- the Deployment -----------------------------------------------------------------------

    def test_probes(self):
        for name, objects in self.renders.items():
            c = container(objects)
            ports = {p["name"] for p in c["ports"]}
            for probe, path in (("startupProbe", "/health"), ("livenessProbe", "/health"),
                                ("readinessProbe", "/ready")):
                get = c[probe]["httpGet"]
                check(get["path"] == path and get["port"] in ports, f"{name}: {probe} {get}")
            startup = c["startupProbe"]
            check(startup["periodSeconds"] * startup["failureThreshold"] >= 300,
                  f"{name}: startup probe allows under 5 minutes for the model to load")

    def test_grace_period_covers_prestop_and_drain(self):
        for name, objects in self.renders.items():
            spec = pod_spec(objects)
            sleep = container(objects)["lifecycle"]["preStop"]["sleep"]["seconds"]
            config = serve_config(objects)
            drain = int(plain_env(objects).get("SPECONTEXT_DRAIN_TIMEOUT_S",
                                               config.get("drain_timeout_s", 30)))
            grace = spec["terminationGracePeriodSeconds"]
            check(sleep > 0 and grace >= sleep + drain,
                  f"{name}: terminationGracePeriodSeconds {grace} < preStop {sleep} + "
                  f"drain {drain}")

    def test_config_keys_and_env_are_the_daemons(self):
        help_text = subprocess.run([self.binary, "serve", "--help"], capture_output=True,
                                   text=True, check=True).stdout
        for name, objects in self.renders.items():
            config = serve_config(objects)
            for key in config:
                check("--" + key.replace("_", "-") + " " in help_text,
                      f"{name}: serve.yaml key {key!r} is no serve option")
            for env in container(objects).get("env", []):
                check(f"[env {env['name']}]" in help_text,
                      f"{name}: {env['name']} is no serve environment variable")
            args = container(objects)["args"]
            mounts = {m["mountPath"]: m["name"] for m in container(objects)["volumeMounts"]}
            config_path = Path(args[args.index("--config") + 1])
            check(mounts.get(str(config_path.parent)) == "config", f"{name}: --config {args}")
            key_file = Path(config["api_key_file"])
            check(mounts.get(str(key_file.parent)) == "api-keys", f"{name}: {key_file} mounted")
            model_mount = [p for p, v in mounts.items() if v == "models"][0]
            check(config["model"].startswith(model_mount + "/"), f"{name}: model {config['model']}")

    def test_references_resolve(self):
        for name, objects in self.renders.items():
            spec = pod_spec(objects)
            volumes = {v["name"]: v for v in spec["volumes"]}
            for mount in container(objects)["volumeMounts"]:
                check(mount["name"] in volumes, f"{name}: mount {mount['name']} has no volume")
            for volume in volumes.values():
                if "configMap" in volume:
                    check(dc.find(objects, "ConfigMap", volume["configMap"]["name"]) and
                          volume["configMap"]["name"].startswith("specontext-config-"),
                          f"{name}: ConfigMap {volume['configMap']['name']}")
                if "secret" in volume:
                    secret = dc.one(objects, "Secret", volume["secret"]["secretName"])
                    for item in volume["secret"].get("items", []):
                        check(item["key"] in secret["stringData"], f"{name}: secret key {item}")
                if "persistentVolumeClaim" in volume:
                    dc.one(objects, "PersistentVolumeClaim",
                           volume["persistentVolumeClaim"]["claimName"])
            for env in container(objects).get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = dc.one(objects, "Secret", ref["name"])
                    check(ref["key"] in secret["stringData"], f"{name}: {env}")

    def test_service_and_budget_select_the_pods(self):
        for name, objects in self.renders.items():
            deployment = dc.one(objects, "Deployment", "specontext")
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            check(pod_labels.get("app.kubernetes.io/component") == "serving-engine", pod_labels)
            service = dc.one(objects, "Service", "specontext")
            check(labels_match(service["spec"]["selector"], pod_labels), f"{name}: Service")
            ports = {p["name"] for p in container(objects)["ports"]}
            for port in service["spec"]["ports"]:
                check(port["targetPort"] in ports, f"{name}: Service port {port}")
            budget = dc.one(objects, "PodDisruptionBudget", "specontext")
            check(labels_match(budget["spec"]["selector"]["matchLabels"], pod_labels),
                  f"{name}: PodDisruptionBudget")

    def test_security_context(self):
        for name, objects in self.renders.items():
            spec = pod_spec(objects)
            c = container(objects)
            check(spec["securityContext"]["runAsNonRoot"] and
                  spec["securityContext"]["runAsUser"] != 0, f"{name}: pod runs as root")
            check(c["securityContext"]["readOnlyRootFilesystem"] and
                  not c["securityContext"]["allowPrivilegeEscalation"], f"{name}: container")

    def test_accelerators(self):
        for name, objects in self.renders.items():
            c = container(objects)
            env = plain_env(objects)
            gpus = c["resources"].get("limits", {}).get(GPU_RESOURCE)
            if name == "cpu-dev":
                check(gpus is None and env.get("SPECONTEXT_BACKEND") == "cpu", f"{name}: {c}")
                volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
                check("hostPath" in volumes["models"] and
                      "persistentVolumeClaim" not in volumes["models"], volumes["models"])
            else:
                check(gpus == "1" and env.get("SPECONTEXT_BACKEND") == "cuda", f"{name}: {c}")
                check(c["resources"]["requests"].get(GPU_RESOURCE) == gpus, f"{name}: requests")

    def test_containerfile_matches_the_pods(self):
        """The image cannot be built here (no container runtime): check what it declares."""
        text = (dc.DEPLOY / "Containerfile").read_text()
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
        instructions = [line.split(None, 1) for line in joined.splitlines() if line.strip()]
        copies = [args for op, args in instructions if op == "COPY"]
        check(instructions[-1] == ["CMD", '["serve"]'], instructions[-1])
        check(not any(op in ("RUN", "ADD") for op, _ in instructions), "only the bundle goes in")
        check(copies == ["--chown=0:0 . /opt/specontext/"], f"COPY {copies}")
        entrypoint = [args for op, args in instructions if op == "ENTRYPOINT"]
        check(entrypoint == ['["/opt/specontext/bin/specontext"]'], entrypoint)
        check(Path(self.binary).name == "specontext", self.binary)
        user = [args for op, args in instructions if op == "USER"][0].split(":")
        exposed = {int(p) for op, args in instructions if op == "EXPOSE" for p in args.split()}
        for name, objects in self.renders.items():
            spec = pod_spec(objects)
            check(int(user[0]) == spec["securityContext"]["runAsUser"] != 0,
                  f"{name}: image user {user} vs pod {spec['securityContext']}")
            ports = {p["containerPort"] for p in container(objects)["ports"]}
            check(ports == exposed, f"{name}: container ports {ports} vs EXPOSE {exposed}")
            config = serve_config(objects)
            check({config["port"], config["grpc_port"]} == ports, f"{name}: serve.yaml ports")

    # -- CRD objects, which no schema here covers ---------------------------------------------

    def test_service_monitor(self):
        for name, objects in self.renders.items():
            for monitor in dc.find(objects, "ServiceMonitor"):
                check(monitor["apiVersion"] == "monitoring.coreos.com/v1", monitor["apiVersion"])
                service = dc.one(objects, "Service", "specontext")
                check(labels_match(monitor["spec"]["selector"]["matchLabels"],
                                   service["metadata"]["labels"]), f"{name}: selector")
                check(service["metadata"]["labels"]["app.kubernetes.io/component"] ==
                      "serving-engine", service["metadata"]["labels"])
                service_ports = {p["name"] for p in service["spec"]["ports"]}
                endpoints = monitor["spec"]["endpoints"]
                check(endpoints, f"{name}: no endpoints")
                for endpoint in endpoints:
                    check(endpoint["port"] in service_ports and endpoint["path"] == "/metrics",
                          f"{name}: {endpoint}")
                    check(re.fullmatch(r"\d+s", endpoint["interval"]), endpoint["interval"])
                    credentials = endpoint["authorization"]["credentials"]
                    secret = dc.one(objects, "Secret", credentials["name"])
                    check(credentials["key"] in secret["stringData"], f"{name}: {credentials}")
                    env_refs = [e["valueFrom"]["secretKeyRef"] for e in container(objects)["env"]
                                if e["name"] == "SPECONTEXT_API_KEY"]
                    check(env_refs == [credentials],
                          f"{name}: the daemon's SPECONTEXT_API_KEY is not the scrape key")

    def test_scaled_object(self):
        scaled = dc.one(self.renders["replicas"], "ScaledObject")
        deployment = dc.one(self.renders["replicas"], "Deployment", "specontext")
        check(scaled["apiVersion"] == "keda.sh/v1alpha1", scaled["apiVersion"])
        spec = scaled["spec"]
        target = spec["scaleTargetRef"]
        check(target["kind"] == "Deployment" and target["name"] == deployment["metadata"]["name"],
              target)
        check(1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], spec)
        check("replicas" not in deployment["spec"], "the autoscaler owns the replica count")
        trigger = spec["triggers"][0]
        check(trigger["type"] == "prometheus", trigger)
        meta = trigger["metadata"]
        check(meta["serverAddress"].startswith("http") and float(meta["threshold"]) > 0, meta)
        check("vllm:num_requests_waiting" in meta["query"], meta["query"])
        check(f'namespace="{scaled["metadata"]["namespace"]}"' in meta["query"],
              f"query {meta['query']!r} names another namespace")

    # -- rules and dashboard ------------------------------------------------------------------

    def test_promtool_check_and_alert_unit_tests(self):
        import yaml

        groups = [dc.rule_groups(o) for n, o in self.renders.items() if n != "cpu-dev"]
        check(all(g == groups[0] for g in groups), "overlays carry different rules")
        with tempfile.TemporaryDirectory() as tmp:
            rules = Path(tmp) / "specontext-rules.yml"
            rules.write_text(yaml.safe_dump(groups[0]))
            # promtool reads rule_files relative to the test file: both go in one directory.
            unit_tests = Path(tmp) / "alert_rules_test.yml"
            unit_tests.write_text((Path(__file__).parent / "alert_rules_test.yml").read_text())
            for command in (["promtool", "check", "rules", str(rules)],
                            ["promtool", "test", "rules", str(unit_tests)]):
                result = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                                        check=False)
                check(result.returncode == 0,
                      f"{' '.join(command)}:\n{result.stdout}{result.stderr}")
        alerts = {r["alert"] for g in groups[0]["groups"] for r in g["rules"] if "alert" in r}
        for alert in ("SpecontextQueueGrowing", "SpecontextKvCacheUsageHigh",
                      "SpecontextTimeToFirstTokenP99High", "SpecontextEngineNotProgressing"):
            check(alert in alerts, f"alert {alert} missing")

    def test_queries_read_declared_metrics(self):
        declared = dc.declared_metrics() | {"up"}
        groups = dc.rule_groups(self.renders["gpu"])["groups"]
        recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
        exprs = [("rule " + r.get("record", r.get("alert", "")), r["expr"])
                 for g in groups for r in g["rules"]]
        exprs += [("panel " + t, e) for t, e in dc.dashboard_queries(dc.dashboard())]
        exprs.append(("ScaledObject", dc.one(self.renders["replicas"], "ScaledObject")
                      ["spec"]["triggers"][0]["metadata"]["query"]))
        for where, expr in exprs:
            names = dc.metric_names(expr)
            check(names, f"{where}: no metric found in {expr!r}")
            unknown = names - declared - recorded
            check(not unknown, f"{where}: {sorted(unknown)} not in server/metrics.cc")

    def test_dashboard_structure(self):
        board = dc.dashboard()
        variables = {v["name"]: v for v in board["templating"]["list"]}
        check(variables["datasource"]["type"] == "datasource", variables)
        ids = [p["id"] for p in board["panels"]]
        check(len(ids) == len(set(ids)), f"duplicate panel ids {ids}")
        titles = set()
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            titles.add(panel["title"])
            check(panel["datasource"]["uid"] == "${datasource}", panel["title"])
            check(panel["targets"], f"{panel['title']}: no queries")
            refs = [t["refId"] for t in panel["targets"]]
            check(len(refs) == len(set(refs)), f"{panel['title']}: refIds {refs}")
            box = panel["gridPos"]
            check(box["x"] + box["w"] <= 24, f"{panel['title']}: {box}")
        for needed in ("Generated tokens / s", "Time to first token",
                       "Requests running and waiting",
                       "KV bytes per tier", "Prefetch bytes / s", "Layers offloaded"):
            check(needed in titles, f"panel {needed!r} missing")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    dc.require_tools("kubectl", "promtool")
    try:
        import kubernetes_validate  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as error:
        dc.skip(f"{error.name} missing from .venv (.venv/bin/pip install -r requirements.txt)")

    suite = Suite(args.binary)
    failures = 0
    tests = [name for name in dir(suite) if name.startswith("test_")]
    for name in tests:
        try:
            getattr(suite, name)()
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then the next test runs
            failures += 1
            print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"{len(tests) - failures}/{len(tests)} passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
