"""Shared by the deploy tests: rendering the Kustomize overlays, finding objects in a render,
the PrometheusRule's rule groups, and the Grafana dashboard's queries."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

SKIP = 77
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
OVERLAYS = DEPLOY / "kubernetes" / "overlays"
DASHBOARD = DEPLOY / "grafana" / "specontext-dashboard.json"


def skip(message):
    print(f"SKIP: {message}")
    sys.exit(SKIP)


def tool(name):
    """A tool from PATH or, for one installed from a wheel, from the repository's .venv."""
    return shutil.which(name) or shutil.which(name, path=str(REPO / ".venv" / "bin"))


def require_tools(*names):
    missing = [name for name in names if tool(name) is None]
    if missing:
        skip(f"{', '.join(missing)} not installed (Debian 'prometheus' has prometheus and "
             "promtool; kubectl must be 1.27 or newer, which Debian 12 does not package)")


def render(overlay):
    """The objects `kubectl kustomize` renders for one overlay directory."""
    import yaml

    result = subprocess.run([tool("kubectl"), "kustomize", str(overlay)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlays():
    return sorted(path for path in OVERLAYS.iterdir() if (path / "kustomization.yaml").exists())


def find(objects, kind, name=None):
    """Objects of `kind` (and `name`, where given; generated names carry a hash suffix)."""
    return [o for o in objects if o["kind"] == kind and
            (name is None or re.fullmatch(re.escape(name) + r"(-[a-z0-9]{10})?",
                                          o["metadata"]["name"]))]


def one(objects, kind, name=None):
    found = find(objects, kind, name)
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def rule_groups(objects):
    """The `groups` of the render's PrometheusRule: what a plain Prometheus loads as a file."""
    return one(objects, "PrometheusRule")["spec"]


def dashboard():
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(board):
    """(panel title, expr) for every query target of every panel, rows included."""
    queries = []
    for panel in board["panels"]:
        for inner in [panel] + panel.get("panels", []):
            for target in inner.get("targets", []):
                queries.append((inner["title"], target["expr"]))
    return queries


def substitute_grafana(expr, values):
    """Replaces Grafana's variables by concrete values, so Prometheus can run the query."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    if "$" in expr:
        raise AssertionError(f"unknown Grafana variable left in {expr!r}")
    return expr


def declared_metrics():
    """Metric names the daemon registers (server/metrics.cc), with the series a histogram adds."""
    source = (REPO / "server" / "metrics.cc").read_text()
    names = set(re.findall(r'"((?:vllm:|specontext_)[a-z_:]+)"', source))
    histograms = set(re.findall(r'histogram\(\s*"([^"]+)"', source))
    for name in histograms:
        names |= {name + "_bucket", name + "_count", name + "_sum"}
    return names


def metric_names(expr):
    """The metric names a PromQL expression reads (label names and functions excluded)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
                               "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_groupings)
    tokens = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\()", without_ranges)
    return {t for t in tokens if ":" in t or t.startswith("specontext_") or t == "up"}
