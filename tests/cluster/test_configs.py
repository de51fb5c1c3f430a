"""The cluster configs in cluster/: valid for the tools that read them, and locked down.

Unit tests, no network and no cloud: the launcher YAMLs against the JSON schema that ships
with Ray (and Ray's own config preparation), the RayJob manifest against the fields KubeRay
needs, token auth and private Ray ports everywhere, the Grafana dashboard against
`orchestrator/metrics.py`, and `cluster/submit.sh` against a fake `ray` on PATH that stands
in for the cluster's job API. SSH, roles, pinned installers, image digests and network
policies: tests/cluster/test_security.py.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
LAUNCHERS = ["aws.yaml", "gcp.yaml"]
RAY_PORTS = {6379, 8265, 10001}
SUBMIT = CLUSTER / "submit.sh"


def load(name: str) -> Any:
    return yaml.safe_load((CLUSTER / name).read_text())


def rayjob() -> Any:
    """The RayJob of cluster/rayjob.yaml (its NetworkPolicies: tests/cluster/test_security.py)."""
    docs = yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text())
    (job,) = [d for d in docs if d["kind"] == "RayJob"]
    return job


def strings(node: Any) -> list[str]:
    """Every string anywhere in a parsed YAML/JSON document."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings(k) + strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


# --- cluster launcher --------------------------------------------------------------------


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_validates_against_rays_schema(name: str) -> None:
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(load(name), json.loads(schema_path.read_text()))


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_survives_rays_own_preparation(name: str) -> None:
    """What `ray up` does before touching the cloud: fill defaults, merge, validate."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(name)))


@pytest.mark.parametrize("name", LAUNCHERS)
def test_head_is_on_demand_cpu_and_marked(name: str) -> None:
    config = load(name)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["GPU"] == 0
    assert head["resources"]["on_demand"] >= 1
    assert not is_spot(head["node_config"])


@pytest.mark.parametrize("name", LAUNCHERS)
def test_gpu_workers_are_spot_from_zero_and_unmarked(name: str) -> None:
    config = load(name)
    gpu_types = {
        key: node
        for key, node in config["available_node_types"].items()
        if node["resources"].get("GPU", 0) > 0
    }
    assert {node["resources"]["GPU"] for node in gpu_types.values()} >= {1, 8}
    for key, node in gpu_types.items():
        assert node.get("min_workers", 0) == 0, key
        assert is_spot(node["node_config"]), key
        assert "on_demand" not in node["resources"], key


@pytest.mark.parametrize("name", LAUNCHERS)
def test_on_demand_marker_only_on_non_spot_nodes(name: str) -> None:
    for key, node in load(name)["available_node_types"].items():
        if "on_demand" in node["resources"]:
            assert not is_spot(node["node_config"]), key


def is_spot(node_config: dict[str, Any]) -> bool:
    aws = node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    scheduling = node_config.get("scheduling", {})
    gcp = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible") is True
    return aws or gcp


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_turns_on_token_auth_on_every_node(name: str) -> None:
    config = load(name)
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    for command in starts:
        if re.search(r"\bray start\b", command):
            assert "RAY_AUTH_MODE=token" in command, command
    init = " ".join(config["initialization_commands"])
    assert "export RAY_AUTH_MODE=token" in init
    # Every node gets the laptop's token; no node type overrides the start commands.
    assert config["file_mounts"].get("/home/ubuntu/.ray/auth_token") == "~/.ray/auth_token"
    for node in config["available_node_types"].values():
        assert "worker_start_ray_commands" not in node


@pytest.mark.parametrize("name", LAUNCHERS)
def test_dashboard_binds_to_loopback_only(name: str) -> None:
    head_start = " ".join(load(name)["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "--dashboard-host=0.0.0.0" not in head_start


def test_gcp_nodes_sit_on_the_firewalled_network() -> None:
    for key, node in load("gcp.yaml")["available_node_types"].items():
        config = node["node_config"]
        assert config["tags"]["items"] == ["xstilts-ray"], key
        subnets = [i["subnetwork"] for i in config["networkInterfaces"]]
        assert subnets == ["regions/us-central1/subnetworks/xstilts-ray"], key


@pytest.mark.parametrize("name", [*LAUNCHERS, "rayjob.yaml", "runtime_env.yaml"])
def test_no_config_holds_credentials(name: str) -> None:
    text = (CLUSTER / name).read_text()
    for pattern in [r"AKIA[0-9A-Z]{16}", r"aws_secret_access_key", r"BEGIN [A-Z ]*PRIVATE KEY"]:
        assert not re.search(pattern, text, re.IGNORECASE), pattern
    assert "RAY_AUTH_TOKEN=" not in text


@pytest.mark.parametrize("name", [*LAUNCHERS, "rayjob.yaml"])
def test_no_config_opens_ray_ports_to_the_world(name: str) -> None:
    """No string pairs a world-open range with a Ray port (rules, commands, comments)."""
    text = (CLUSTER / name).read_text()
    for line in text.splitlines():
        if "0.0.0.0/0" in line or "::/0" in line:
            assert not any(str(port) in line for port in RAY_PORTS), line


# --- KubeRay -----------------------------------------------------------------------------


def pod_spec_ok(template: dict[str, Any]) -> None:
    containers = template["spec"]["containers"]
    assert containers and all(c["image"] for c in containers)


def test_rayjob_has_the_fields_kuberay_requires() -> None:
    job = rayjob()
    assert job["apiVersion"] == "ray.io/v1"
    assert job["kind"] == "RayJob"
    assert job["metadata"]["name"]
    spec = job["spec"]
    assert spec["entrypoint"].startswith("xstilts run ")
    assert "--storage s3://" in spec["entrypoint"]
    assert isinstance(spec["backoffLimit"], int) and spec["backoffLimit"] >= 1
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"].startswith("2.60")
    head = cluster["headGroupSpec"]
    pod_spec_ok(head["template"])
    groups = cluster["workerGroupSpecs"]
    assert groups
    for group in groups:
        for field in ["groupName", "replicas", "minReplicas", "maxReplicas", "template"]:
            assert field in group, field
        assert group["minReplicas"] == 0
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        pod_spec_ok(group["template"])
    assert len({g["groupName"] for g in groups}) == len(groups)


def test_rayjob_runtime_env_installs_and_restores_from_shared_storage() -> None:
    from ray.runtime_env import RuntimeEnv

    spec = rayjob()["spec"]
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    RuntimeEnv(**env)  # Ray accepts it
    assert env["working_dir"].startswith("s3://") and env["working_dir"].endswith(".zip")
    packages = env["pip"]["packages"]
    torch = packages.index("torch==2.13.0")  # before the working dir: DeepSpeed builds on it
    assert packages.index("${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}") > torch


def test_rayjob_turns_on_token_auth_and_exposes_nothing() -> None:
    cluster = rayjob()["spec"]["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert not head.get("enableIngress", False)
    for template in [head["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]:
        for container in template["spec"]["containers"]:
            for env in container.get("env", []):
                assert not (env["name"] == "RAY_AUTH_MODE" and env.get("value") != "token")
                assert not (env["name"] == "RAY_AUTH_TOKEN" and "value" in env)  # Secret only
            for port in container.get("ports", []):
                assert "hostPort" not in port


def test_rayjob_pins_driving_trials_to_the_on_demand_head() -> None:
    cluster = rayjob()["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    resources = json.loads(json.loads(head["rayStartParams"]["resources"]))
    assert resources == {"on_demand": 1}
    assert head["rayStartParams"]["num-gpus"] == "0"
    selector = head["template"]["spec"]["nodeSelector"]
    assert selector["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    for group in cluster["workerGroupSpecs"]:
        assert group["template"]["spec"]["nodeSelector"]["eks.amazonaws.com/capacityType"] == (
            "SPOT"
        )


# --- runtime env -------------------------------------------------------------------------


def test_runtime_env_parses_as_ray_job_submit_reads_it() -> None:
    from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
    from ray.runtime_env import RuntimeEnv

    env = parse_runtime_env_args(
        runtime_env=str(CLUSTER / "runtime_env.yaml"), working_dir=str(ROOT)
    )
    RuntimeEnv(**env)
    for excluded in [".venv/", "xstilts-runs/", ".mypy_cache/", ".git/"]:
        assert excluded in env["excludes"]
    assert env["env_vars"]["TOKENIZERS_PARALLELISM"] == "false"
    assert "HF_HOME" in env["env_vars"]
    assert not any("TOKEN" in k and k != "TOKENIZERS_PARALLELISM" for k in env["env_vars"])


# --- Grafana -----------------------------------------------------------------------------


def defined_series() -> set[str]:
    """The Prometheus series `orchestrator/metrics.py` exports, named as Ray names them."""
    tree = ast.parse((ROOT / "orchestrator" / "metrics.py").read_text())
    series: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        kind = node.func.attr
        if kind not in {"Counter", "Gauge", "Histogram"} or not node.args:
            continue
        first = node.args[0]
        assert isinstance(first, ast.Constant) and isinstance(first.value, str)
        name = f"ray_{first.value}"
        if kind == "Counter":
            series.add(f"{name}_total")
        elif kind == "Gauge":
            series.add(name)
        else:
            series |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return series


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def test_metrics_module_defines_the_documented_series() -> None:
    assert defined_series() >= {
        "ray_xstilts_cells_done_total",
        "ray_xstilts_cells_failed_total",
        "ray_xstilts_rows_written_total",
        "ray_xstilts_languages_scored_total",
        "ray_xstilts_phase_seconds_bucket",
    }


def test_grafana_dashboard_queries_only_defined_metrics() -> None:
    dashboard = json.loads((CLUSTER / "grafana_dashboard.json").read_text())
    defined = defined_series()
    used: set[str] = set()
    for expr in dashboard_queries(dashboard):
        # A name matcher (`{__name__=~"ray_xstilts_.+"}`) must match some defined series.
        for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
            assert any(re.fullmatch(pattern, s) for s in defined), pattern
        plain = re.sub(r'__name__=~"[^"]+"', "", expr)
        for name in re.findall(r"\bray_xstilts_\w+", plain):
            assert name in defined, f"{name} is not exported by orchestrator/metrics.py"
            used.add(name)
    histogram_used = {s.rsplit("_", 1)[0] for s in used if s.endswith("_bucket")}
    for series in defined:
        base = series.rsplit("_", 1)[0] if series.endswith(("_sum", "_count")) else series
        if series.endswith(("_bucket", "_sum", "_count")):
            assert base in histogram_used or series in used, series
        else:
            assert series in used, f"{series} has no panel"


def test_grafana_dashboard_aggregates_per_process_series_and_filters_by_sweep() -> None:
    dashboard = json.loads((CLUSTER / "grafana_dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "sweep" in variables and variables["sweep"]["multi"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert re.search(r"\bsum\b", expr), expr  # one series per worker process
            assert 'sweep=~"$sweep"' in expr, expr
            for labels in re.findall(r"\bby \(([^)]*)\)", expr):
                assert {x.strip() for x in labels.split(",")} <= {"sweep", "model", "phase", "le"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert dashboard["uid"] and dashboard["title"]


# --- submit.sh ---------------------------------------------------------------------------

# `ray job list` as Ray 2.60 prints it (pprint of JobDetails), with one driver job, one job
# of another sweep and a deleted attempt (2) among this sweep's attempts.
JOB_LIST = """\
[JobDetails(type=<JobType.SUBMISSION: 'SUBMISSION'>, job_id='02000000', \
submission_id='xstilts-scaling-1', driver_info=None, status=<JobStatus.FAILED: 'FAILED'>, \
entrypoint='xstilts run scaling --storage s3://b/x', message=None, error_type=None, \
start_time=1, end_time=2, metadata={'sweep': 'scaling', 'attempt': '1'}, runtime_env=None, \
driver_agent_http_address=None, driver_node_id=None, driver_exit_code=1),
 JobDetails(type=<JobType.SUBMISSION: 'SUBMISSION'>, job_id='04000000', \
submission_id='xstilts-scaling-3', driver_info=None, status=<JobStatus.STOPPED: 'STOPPED'>, \
entrypoint='xstilts run scaling --storage s3://b/x', message=None, error_type=None, \
start_time=3, end_time=4, metadata=None, runtime_env=None, driver_agent_http_address=None, \
driver_node_id=None, driver_exit_code=None),
 JobDetails(type=<JobType.SUBMISSION: 'SUBMISSION'>, job_id='05000000', \
submission_id='xstilts-quickstart-7', driver_info=None, status=<JobStatus.SUCCEEDED: \
'SUCCEEDED'>, entrypoint='xstilts run quickstart', message=None, error_type=None, \
start_time=5, end_time=6, metadata=None, runtime_env=None, driver_agent_http_address=None, \
driver_node_id=None, driver_exit_code=0),
 JobDetails(type=<JobType.DRIVER: 'DRIVER'>, job_id='01000000', submission_id=None, \
driver_info=None, status=<JobStatus.SUCCEEDED: 'SUCCEEDED'>, entrypoint='', message=None, \
error_type=None, start_time=1, end_time=2, metadata=None, runtime_env=None, \
driver_agent_http_address=None, driver_node_id=None, driver_exit_code=None)]
"""

FAKE_RAY = """\
#!/usr/bin/env bash
# Stand-in for the cluster's job API: canned `ray job list`, recorded `ray job submit`.
if [[ $1 == job && $2 == list ]]; then
  [[ -n ${FAKE_RAY_DOWN:-} ]] && { echo "ConnectionError: refused" >&2; exit 1; }
  cat "$FAKE_JOB_LIST"; exit 0
fi
printf '%s\\n' "$@" > "$FAKE_CALLS"
echo "RAY_AUTH_MODE=${RAY_AUTH_MODE:-}" >> "$FAKE_CALLS"
"""

TOKEN = "s3cr3t-token-value-0123456789"


@pytest.fixture
def fake_cluster(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ray = bin_dir / "ray"
    ray.write_text(FAKE_RAY)
    ray.chmod(ray.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "jobs.txt").write_text(JOB_LIST)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        HOME=str(home),
        FAKE_JOB_LIST=str(tmp_path / "jobs.txt"),
        FAKE_CALLS=str(tmp_path / "calls.txt"),
        RAY_AUTH_TOKEN_PATH=str(token),
    )
    return env


def submit(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SUBMIT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_submit_help_exits_zero() -> None:
    result = subprocess.run([str(SUBMIT), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cluster/submit.sh")


def test_submit_without_spec_is_one_line_exit_2(fake_cluster: dict[str, str]) -> None:
    result = submit(fake_cluster)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "SPEC" in result.stderr


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (["--bogus", "scaling"], "unknown option"),
        (["no/such/spec.yaml"], "not found"),
        (["/etc/hostname"], "outside the repository"),
    ],
)
def test_submit_bad_input_is_one_line_exit_2(
    fake_cluster: dict[str, str], args: list[str], cause: str
) -> None:
    result = submit(fake_cluster, *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert cause in result.stderr


def test_submit_without_token_is_one_line_exit_2(fake_cluster: dict[str, str]) -> None:
    env = {k: v for k, v in fake_cluster.items() if k != "RAY_AUTH_TOKEN_PATH"}
    result = submit(env, "scaling")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "token" in result.stderr


def test_submission_id_is_next_attempt_of_the_sweep(fake_cluster: dict[str, str]) -> None:
    first = submit(fake_cluster, "--print-id", "scaling", "--storage", "s3://b/x")
    again = submit(fake_cluster, "--print-id", "scaling", "--storage", "s3://b/x")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout == "xstilts-scaling-4\n"  # after 1 and 3


def test_submission_id_differs_per_attempt(fake_cluster: dict[str, str], tmp_path: Path) -> None:
    ids = []
    jobs = Path(fake_cluster["FAKE_JOB_LIST"])
    for _ in range(3):
        result = submit(fake_cluster, "--print-id", "scaling")
        ids.append(result.stdout.strip())
        # The attempt is submitted: the cluster now lists it.
        jobs.write_text(jobs.read_text() + f" JobDetails(submission_id='{ids[-1]}')\n")
    assert ids == ["xstilts-scaling-4", "xstilts-scaling-5", "xstilts-scaling-6"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["quickstart"], "xstilts-quickstart-8"),
        (["scaling", "--name", "quickstart"], "xstilts-quickstart-8"),
        (["scaling", "--name=fresh"], "xstilts-fresh-1"),
        (["orchestrator/specs/scaling.yaml"], "xstilts-scaling-4"),
    ],
)
def test_submission_id_follows_the_sweep_name(
    fake_cluster: dict[str, str], args: list[str], expected: str
) -> None:
    result = submit(fake_cluster, "--print-id", *args)
    assert result.stdout.strip() == expected, result.stderr


def test_submission_id_on_an_empty_cluster_is_attempt_1(fake_cluster: dict[str, str]) -> None:
    Path(fake_cluster["FAKE_JOB_LIST"]).write_text("[]\n")
    assert submit(fake_cluster, "--print-id", "scaling").stdout == "xstilts-scaling-1\n"


def test_unreachable_cluster_fails_in_one_line(fake_cluster: dict[str, str]) -> None:
    result = submit({**fake_cluster, "FAKE_RAY_DOWN": "1"}, "scaling")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot list jobs" in result.stderr
    assert not Path(fake_cluster["FAKE_CALLS"]).exists()


def test_submit_runs_ray_job_submit_with_token_auth_and_never_shows_the_token(
    fake_cluster: dict[str, str], tmp_path: Path
) -> None:
    result = submit(
        fake_cluster,
        str(ROOT / "orchestrator" / "specs" / "scaling.yaml"),
        "--storage",
        "s3://bucket/xstilts",
        cwd=tmp_path,  # works from anywhere; the spec is named relative to the repository
    )
    assert result.returncode == 0, result.stderr
    calls = Path(fake_cluster["FAKE_CALLS"]).read_text().splitlines()
    separator = calls.index("--")
    options, entrypoint = calls[:separator], calls[separator + 1 : -1]
    assert options[:2] == ["job", "submit"]
    pairs = dict(itertools.pairwise(options))
    assert pairs["--submission-id"] == "xstilts-scaling-4"
    assert pairs["--runtime-env"] == "cluster/runtime_env.yaml"
    assert pairs["--working-dir"] == "."
    assert pairs["--address"] == "http://127.0.0.1:8265"
    assert json.loads(pairs["--metadata-json"])["attempt"] == "4"
    assert "--no-wait" in options
    assert entrypoint == [
        "xstilts",
        "run",
        "orchestrator/specs/scaling.yaml",
        "--storage",
        "s3://bucket/xstilts",
    ]
    assert calls[-1] == "RAY_AUTH_MODE=token"
    everything = result.stdout + result.stderr + "\n".join(calls)
    assert TOKEN not in everything


def test_submit_passes_an_explicit_token_through_the_environment_only(
    fake_cluster: dict[str, str],
) -> None:
    env = {k: v for k, v in fake_cluster.items() if k != "RAY_AUTH_TOKEN_PATH"}
    env["RAY_AUTH_TOKEN"] = TOKEN
    env["RAY_ADDRESS"] = "http://127.0.0.1:18265"
    result = submit(env, "--wait", "scaling")
    assert result.returncode == 0, result.stderr
    calls = Path(fake_cluster["FAKE_CALLS"]).read_text()
    assert TOKEN not in calls + result.stdout + result.stderr
    assert "http://127.0.0.1:18265" in calls
    assert "--no-wait" not in calls
