"""The cluster configs are locked down: SSH, roles, installers, images, network policies.

Unit tests, no network and no cloud. Each property is checked on the configs as shipped
(placeholders `SET-ME` where only the user knows the value) and on a copy with every
placeholder filled in, so a filled-in config keeps every property. Where a property rests on
what Ray's launcher does with a config, Ray's own code is called: its AWS bootstrap with
boto3 stubbed out (not installed here, and never reached for what is checked).
`cluster/launch.sh` runs against stand-in `ray` and `kubectl` commands.
"""

from __future__ import annotations

import copy
import importlib
import ipaddress
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
IAM = CLUSTER / "iam"
LAUNCH = CLUSTER / "launch.sh"
LAUNCHERS = ["aws.yaml", "gcp.yaml"]
CONFIGS = [*LAUNCHERS, "rayjob.yaml"]
PLACEHOLDER = "SET-ME"
CONSTRAINTS = "cluster/constraints.txt"

# What a user puts where the configs say SET-ME (formats as the clouds print them).
FILLED = [
    ("ami-SET-ME", "ami-0abcdef1234567890"),
    ("sg-SET-ME", "sg-0fedcba9876543210"),
    ("images/SET-ME", "images/example-image-v20260101"),
    ("SET-ME-project", "example-project-1"),
    ("SET-ME-bucket", "example-bucket"),
    ("SET-ME-commit", "0123abc"),
    ("sha256:SET-ME", "sha256:" + "ab" * 32),
    ("cidr: SET-ME", "cidr: 198.51.100.0/24"),
]
JOB_API_CIDR = ipaddress.ip_network("198.51.100.0/24")


def fill(text: str) -> str:
    for placeholder, value in FILLED:
        text = text.replace(placeholder, value)
    left = [s for doc in yaml.safe_load_all(text) for s in strings(doc) if PLACEHOLDER in s]
    assert not left, f"placeholders without a FILLED value: {left}"
    return text


def documents(name: str, filled: bool = False) -> list[Any]:
    text = (CLUSTER / name).read_text()
    return list(yaml.safe_load_all(fill(text) if filled else text))


def load(name: str, filled: bool = False) -> Any:
    (doc,) = documents(name, filled)
    return doc


def of_kind(kind: str, filled: bool = False) -> list[dict[str, Any]]:
    return [d for d in documents("rayjob.yaml", filled) if d["kind"] == kind]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


BOTH = pytest.mark.parametrize("filled", [False, True], ids=["shipped", "filled"])


def test_every_placeholder_has_a_filled_value() -> None:
    for name in CONFIGS:
        fill((CLUSTER / name).read_text())


# --- nothing open to the world -----------------------------------------------------------

CIDR = re.compile(r"(?<![\w.:])([0-9a-fA-F.:]+/\d{1,3})(?![\w.])")


@BOTH
@pytest.mark.parametrize("name", CONFIGS)
def test_no_config_value_opens_anything_to_the_world(name: str, filled: bool) -> None:
    """No CIDR anywhere in a config's values (comments aside) is /0."""
    for doc in documents(name, filled):
        for text in strings(doc):
            for cidr in CIDR.findall(text):
                try:
                    network = ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    continue
                assert network.prefixlen > 0, f"{name}: {text}"


def readme_commands() -> list[str]:
    """Shell lines of cluster/README.md's code blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", (CLUSTER / "README.md").read_text(), re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def test_readme_opens_ssh_to_the_users_cidr_only() -> None:
    ssh = [c for c in readme_commands() if re.search(r"--port[= ]22\b|tcp:22\b", c)]
    assert len(ssh) == 2, ssh  # the AWS security group and the Google Cloud firewall rule
    for command in ssh:
        assert '"$SSH_CIDR"' in command, command
        assert "0.0.0.0/0" not in command, command
    guard = [c for c in readme_commands() if "SSH_CIDR" in c and "*/0" in c]
    assert guard, "the README sets SSH_CIDR without refusing a world-open value"


# --- AWS: security group, roles, AMI -------------------------------------------------------


@BOTH
def test_aws_every_node_names_the_one_security_group(filled: bool) -> None:
    config = load("aws.yaml", filled)
    assert "security_group" not in config["provider"]
    groups = {
        json.dumps(node["node_config"].get("SecurityGroupIds"))
        for node in config["available_node_types"].values()
    }
    assert len(groups) == 1, groups
    (group,) = json.loads(groups.pop())
    pattern = r"sg-[0-9a-f]{8}([0-9a-f]{9})?" if filled else "sg-SET-ME"
    assert re.fullmatch(pattern, group), group


@pytest.fixture
def ray_aws_config(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Ray's AWS bootstrap module, imported with boto3 and botocore stubbed out."""
    for name in [
        "boto3",
        "boto3.exceptions",
        "boto3.resources",
        "boto3.resources.base",
        "botocore",
        "botocore.client",
        "botocore.config",
        "botocore.exceptions",
    ]:
        stub = mock.MagicMock(name=name)
        stub.__version__ = constraints()[name.split(".")[0]]  # Ray checks boto3's version
        monkeypatch.setitem(sys.modules, name, stub)
    for name in [m for m in sys.modules if m.startswith("ray.autoscaler._private.aws")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("ray.autoscaler._private.aws.config")
    yield module
    for name in [m for m in sys.modules if m.startswith("ray.autoscaler._private.aws")]:
        del sys.modules[name]


def test_rays_own_aws_group_would_open_ssh_to_the_world(ray_aws_config: Any) -> None:
    """Why the config names its group: the group Ray makes admits SSH from anywhere."""
    rules = ray_aws_config._create_default_ssh_inbound_rules()
    assert [r["CidrIp"] for rule in rules for r in rule["IpRanges"]] == ["0.0.0.0/0"]


@BOTH
def test_rays_aws_bootstrap_makes_no_group_and_no_role(ray_aws_config: Any, filled: bool) -> None:
    """`ray up`'s security-group and IAM steps leave this config alone: no cloud call."""

    def no_cloud(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Ray would create or change a security group or IAM role")

    config = load("aws.yaml", filled)
    config["head_node"] = {}
    with (
        mock.patch.object(ray_aws_config, "_upsert_security_groups", no_cloud),
        mock.patch.object(ray_aws_config, "_get_instance_profile", no_cloud),
        mock.patch.object(ray_aws_config, "_client", no_cloud),
        mock.patch.object(ray_aws_config, "_resource", no_cloud),
    ):
        after = ray_aws_config._configure_security_group(copy.deepcopy(config))
        after = ray_aws_config._configure_iam_role(after)
    assert after["available_node_types"] == config["available_node_types"]
    assert after["head_node"] == {}  # no default `ray-autoscaler-v1` profile for the head


@BOTH
def test_aws_head_and_workers_have_separate_instance_profiles(filled: bool) -> None:
    config = load("aws.yaml", filled)
    head_type = config["head_node_type"]
    for key, node in config["available_node_types"].items():
        profile = node["node_config"]["IamInstanceProfile"]
        expected = "xstilts-ray-head" if key == head_type else "xstilts-ray-worker"
        assert profile == {"Name": expected}, key


@BOTH
def test_aws_nodes_boot_one_fixed_ami(filled: bool) -> None:
    config = load("aws.yaml", filled)
    images = {node["node_config"]["ImageId"] for node in config["available_node_types"].values()}
    assert len(images) == 1, images
    pattern = r"ami-[0-9a-f]{8}([0-9a-f]{9})?" if filled else "ami-SET-ME"
    assert re.fullmatch(pattern, images.pop())


def policy(name: str) -> list[dict[str, Any]]:
    document = json.loads((IAM / name).read_text())
    assert document["Version"] == "2012-10-17"
    statements = document["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


def test_aws_bucket_policy_reaches_the_sweep_bucket_only() -> None:
    bucket = "arn:aws:s3:::SET-ME-bucket"
    for statement in policy("aws-bucket.json"):
        assert all(a.startswith("s3:") and "*" not in a for a in actions(statement))
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        assert set(resources) <= {bucket, f"{bucket}/*"}, resources
    granted = {a for s in policy("aws-bucket.json") for a in actions(s)}
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= granted


def test_aws_autoscaler_policy_touches_only_this_clusters_nodes() -> None:
    from ray.autoscaler.tags import TAG_RAY_CLUSTER_NAME

    cluster_name = load("aws.yaml")["cluster_name"]
    statements = policy("aws-autoscaler.json")
    for statement in statements:
        for action in actions(statement):
            assert "*" not in action, action
            assert action.split(":")[0] in {"ec2", "iam"}, action  # no s3, ssm, sts, ...
            changes = action.split(":")[1].startswith(("Terminate", "Stop", "Start", "Create"))
            if changes and action != "ec2:CreateTags":
                tag = statement["Condition"]["StringEquals"]
                assert tag == {f"ec2:ResourceTag/{TAG_RAY_CLUSTER_NAME}": cluster_name}, action
            if action == "ec2:CreateTags":
                condition = statement["Condition"]["StringEquals"]
                assert condition in (
                    {"ec2:CreateAction": "RunInstances"},
                    {f"ec2:ResourceTag/{TAG_RAY_CLUSTER_NAME}": cluster_name},
                ), condition
            if action.startswith("iam:"):
                assert action == "iam:PassRole"
                assert (
                    statement["Resource"] == "arn:aws:iam::SET-ME-account:role/xstilts-ray-worker"
                )
    granted = {a for s in statements for a in actions(s)}
    assert {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeInstances"} <= granted


def test_aws_roles_are_for_ec2_instances_only() -> None:
    (statement,) = policy("aws-trust.json")
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


# --- Google Cloud: service accounts, images ----------------------------------------------


@BOTH
def test_gcp_head_and_workers_have_separate_service_accounts(filled: bool) -> None:
    config = load("gcp.yaml", filled)
    project = config["provider"]["project_id"]
    head_type = config["head_node_type"]
    for key, node in config["available_node_types"].items():
        (account,) = node["node_config"]["serviceAccounts"]
        role = "head" if key == head_type else "worker"
        assert account["email"] == f"xstilts-ray-{role}@{project}.iam.gserviceaccount.com", key
        if role == "worker":  # Cloud Storage only, whatever roles the account gets
            assert account["scopes"] == ["https://www.googleapis.com/auth/devstorage.read_write"]


def test_gcp_autoscaler_role_creates_and_deletes_instances_only() -> None:
    role = yaml.safe_load((IAM / "gcp-autoscaler-role.yaml").read_text())
    permissions = role["includedPermissions"]
    assert len(set(permissions)) == len(permissions)
    allowed = re.compile(
        r"compute\.(instances\.\w+|disks\.create|subnetworks\.use(ExternalIp)?|zoneOperations\.get)"
    )
    for permission in permissions:
        assert allowed.fullmatch(permission), permission
        assert "IamPolicy" not in permission, permission
    assert {"compute.instances.create", "compute.instances.delete"} <= set(permissions)
    assert "compute.instances.setServiceAccount" in permissions  # workers get their account


@BOTH
def test_gcp_nodes_boot_fixed_images_not_families(filled: bool) -> None:
    for key, node in load("gcp.yaml", filled)["available_node_types"].items():
        for disk in node["node_config"]["disks"]:
            image = disk["initializeParams"]["sourceImage"]
            assert "/family/" not in image, key
            assert re.fullmatch(r"projects/[a-z0-9-]+/global/images/[A-Za-z0-9-]+", image), image


# --- installers --------------------------------------------------------------------------


def setup_commands(config: dict[str, Any]) -> list[str]:
    keys = ["initialization_commands", "setup_commands", "head_setup_commands"]
    keys += ["worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands"]
    return [command for key in keys for command in config.get(key, [])]


@pytest.mark.parametrize("name", LAUNCHERS)
def test_no_download_is_piped_into_a_shell(name: str) -> None:
    for command in setup_commands(load(name)):
        assert not re.search(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z)?sh\b", command)
        if re.search(r"\b(curl|wget)\b", command):
            urls = re.findall(r"https://\S+", command)
            assert len(urls) == 1, command
            version = re.search(r"uv-(\d+\.\d+\.\d+)-", urls[0])
            assert version, urls[0]  # a versioned file, not "latest" or an install script
            digest = re.search(r'echo "([0-9a-f]{64})  (\S+)" \| sha256sum -c', command)
            assert digest, f"no sha256 check: {command}"
            downloaded = re.search(r"-\w*o\s+(\S+)", command)
            assert downloaded and downloaded.group(1) == digest.group(2), command


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / CONSTRAINTS).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9A-Za-z.]*)", line)
        assert match, f"not an exact pin: {line}"
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        assert name not in pins, f"{name} pinned twice"
        pins[name] = match.group(2)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_requirements(command: str) -> tuple[list[str], bool]:
    """The requirements a `pip install` command names, and whether it uses the constraints."""
    words = shlex.split(command.split("pip install", 1)[1])
    takes_value = {"-c", "--constraint", "--index-url", "-i", "--extra-index-url"}
    requirements, constrained, skip = [], False, False
    for word, following in zip(words, [*words[1:], ""], strict=True):
        if skip:
            skip = False
            continue
        if word in takes_value:
            constrained |= word in {"-c", "--constraint"} and following.endswith(CONSTRAINTS)
            skip = True
        elif not word.startswith("-"):
            requirements.append(word)
    return requirements, constrained


@pytest.mark.parametrize("name", LAUNCHERS)
def test_every_pip_install_is_pinned(name: str) -> None:
    pins = constraints()
    installs = [c for c in setup_commands(load(name)) if "pip install" in c]
    assert len(installs) >= 8, installs
    for command in installs:
        requirements, constrained = pip_requirements(command)
        assert requirements, command
        for requirement in requirements:
            if requirement.startswith(("~", "/", ".")):  # the repository: pyproject + -c
                assert constrained, command
                continue
            parsed = Requirement(requirement)
            exact = [s for s in parsed.specifier if s.operator == "==" and "*" not in s.version]
            assert exact or (constrained and canonical(parsed.name) in pins), command


def test_constraints_pin_every_dependency_within_pyproject() -> None:
    pins = constraints()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonical(requirement.name)
        assert name in pins, f"{name} is not in {CONSTRAINTS}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (line, pins[name])
    for client in ["boto3", "google-api-python-client"]:  # the autoscalers' cloud clients
        assert client in pins


def test_ray_and_torch_versions_agree_everywhere() -> None:
    pins = constraints()
    job = of_kind("RayJob")[0]
    assert pins["ray"] == job["spec"]["rayClusterSpec"]["rayVersion"]
    for name in LAUNCHERS:
        for command in setup_commands(load(name)):
            for torch in re.findall(r"\btorch==([\w.+]+)", command):
                assert Version(torch).public == pins["torch"], command
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    assert f"torch=={pins['torch']}" in env["pip"]["packages"]


def test_rayjob_runtime_env_installs_under_the_constraints() -> None:
    env = yaml.safe_load(of_kind("RayJob")[0]["spec"]["runtimeEnvYAML"])
    packages = env["pip"]["packages"]
    assert packages[0] == f"-c ${{RAY_RUNTIME_ENV_CREATE_WORKING_DIR}}/{CONSTRAINTS}"
    for package in packages[1:]:
        if package != "${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}":
            assert re.fullmatch(r"[\w-]+==[\d.]+", package), package


# --- images ------------------------------------------------------------------------------


@BOTH
def test_rayjob_images_are_pinned_by_digest(filled: bool) -> None:
    job = of_kind("RayJob", filled)[0]
    cluster = job["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"]]
    templates += [g["template"] for g in cluster["workerGroupSpecs"]]
    if "submitterPodTemplate" in job["spec"]:
        templates.append(job["spec"]["submitterPodTemplate"])
    digest = "[0-9a-f]{64}" if filled else PLACEHOLDER
    for template in templates:
        for container in template["spec"]["containers"]:
            image = container["image"]
            match = re.fullmatch(rf"rayproject/ray:([\w.-]+)@sha256:{digest}", image)
            assert match, image
            assert match.group(1).startswith(cluster["rayVersion"] + "-"), image


# --- Kubernetes NetworkPolicy ------------------------------------------------------------


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "matchExpressions are not evaluated here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def admits(
    policy_doc: dict[str, Any],
    port: int,
    labels: dict[str, str] | None = None,
    ip: str | None = None,
    same_namespace: bool = True,
) -> bool:
    """Whether one NetworkPolicy admits a connection, as the Kubernetes API defines it.

    A peer is a pod (its labels, in this namespace or another) or an address outside the
    cluster (`ip`). A rule without `ports` admits every port; a peer with only a
    podSelector means this namespace; `namespaceSelector: {}` means every namespace.
    """
    for rule in policy_doc["spec"].get("ingress", []):
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        for peer in rule.get("from", []):
            if "ipBlock" in peer:
                block = peer["ipBlock"]
                if ip is None or block["cidr"] == PLACEHOLDER:  # a placeholder admits nothing
                    continue
                if ipaddress.ip_address(ip) in ipaddress.ip_network(block["cidr"]):
                    assert not block.get("except")
                    return True
                continue
            if labels is None:
                continue
            namespace_ok = same_namespace
            if "namespaceSelector" in peer:
                namespace_ok = selects(peer["namespaceSelector"], {})
            if namespace_ok and selects(peer.get("podSelector", {}), labels):
                return True
    return False


def ray_pods(filled: bool) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Labels of the head pod and of each worker group's pods, as KubeRay sets them."""
    cluster = of_kind("RayJob", filled)[0]["spec"]["rayClusterSpec"]
    head = {**cluster["headGroupSpec"]["template"]["metadata"]["labels"]}
    head.update({"ray.io/node-type": "head", "ray.io/cluster": "xstilts-scaling-abcde"})
    workers = []
    for group in cluster["workerGroupSpecs"]:
        labels = {**group["template"]["metadata"]["labels"], "ray.io/node-type": "worker"}
        labels.update(
            {"ray.io/group": group["groupName"], "ray.io/cluster": head["ray.io/cluster"]}
        )
        workers.append(labels)
    return head, workers


def policy_for(pod: dict[str, str], filled: bool) -> dict[str, Any]:
    (found,) = [
        p for p in of_kind("NetworkPolicy", filled) if selects(p["spec"]["podSelector"], pod)
    ]
    assert "Ingress" in found["spec"]["policyTypes"]
    return found


GCS, DASHBOARD, CLIENT, METRICS = 6379, 8265, 10001, 8080


@BOTH
def test_head_admits_the_job_api_from_its_peers_and_gcs_from_ray_pods_only(filled: bool) -> None:
    head, workers = ray_pods(filled)
    head_policy = policy_for(head, filled)
    job = of_kind("RayJob", filled)[0]
    submitter = {"batch.kubernetes.io/job-name": job["metadata"]["name"], "job-name": "x"}
    operator = {"app.kubernetes.io/name": "kuberay-operator"}
    stranger = {"app": "something-else"}
    for worker in workers:
        for port in [GCS, DASHBOARD, CLIENT, METRICS, 12345]:
            assert admits(head_policy, port, labels=worker), (worker, port)
    assert admits(head_policy, GCS, labels=head)  # the head's own raylet
    assert admits(head_policy, DASHBOARD, labels=submitter)
    assert admits(head_policy, DASHBOARD, labels=operator, same_namespace=False)
    for port in [GCS, CLIENT, METRICS, 12345]:
        assert not admits(head_policy, port, labels=submitter), port
        assert not admits(head_policy, port, labels=operator, same_namespace=False), port
    for port in [GCS, DASHBOARD, CLIENT, METRICS]:
        assert not admits(head_policy, port, labels=stranger), port
        assert not admits(head_policy, port, ip="203.0.113.9"), port
    if filled:
        inside = str(next(JOB_API_CIDR.hosts()))
        assert admits(head_policy, DASHBOARD, ip=inside)
        for port in [GCS, CLIENT, METRICS]:
            assert not admits(head_policy, port, ip=inside), port


@BOTH
def test_every_rule_that_reaches_gcs_names_only_this_jobs_ray_pods(filled: bool) -> None:
    """Structural form of the above: any rule admitting 6379 has pod-label peers only."""
    head, _ = ray_pods(filled)
    instance = {"app.kubernetes.io/instance": head["app.kubernetes.io/instance"]}
    for rule in policy_for(head, filled)["spec"]["ingress"]:
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and GCS not in ports:
            assert ports == [DASHBOARD], rule
            continue
        assert rule["from"] == [{"podSelector": {"matchLabels": instance}}], rule


@BOTH
def test_workers_admit_this_jobs_ray_pods_only(filled: bool) -> None:
    head, workers = ray_pods(filled)
    job = of_kind("RayJob", filled)[0]
    submitter = {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
    for worker in workers:
        worker_policy = policy_for(worker, filled)
        assert not selects(worker_policy["spec"]["podSelector"], head)
        for port in [GCS, DASHBOARD, 10002, 12345]:
            assert admits(worker_policy, port, labels=head)
            assert admits(worker_policy, port, labels=workers[0])
            assert not admits(worker_policy, port, labels=submitter)
            assert not admits(worker_policy, port, labels={}, same_namespace=False)
            assert not admits(worker_policy, port, ip="198.51.100.7")


def test_job_api_cidr_is_a_placeholder_until_filled() -> None:
    for filled, expected in [(False, PLACEHOLDER), (True, str(JOB_API_CIDR))]:
        head, _ = ray_pods(filled)
        blocks = [
            peer["ipBlock"]["cidr"]
            for rule in policy_for(head, filled)["spec"]["ingress"]
            for peer in rule.get("from", [])
            if "ipBlock" in peer
        ]
        assert blocks == [expected]


# --- launch.sh ---------------------------------------------------------------------------

FAKE_TOOL = """\
#!/usr/bin/env bash
# Stand-in for `ray` / `kubectl`: records its name, arguments and working directory.
{ echo "$(basename "$0")"; printf '%s\\n' "$@"; echo "cwd=$PWD"; } > "$FAKE_CALLS"
"""


@pytest.fixture
def tools(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ["ray", "kubectl"]:
        tool = bin_dir / name
        tool.write_text(FAKE_TOOL)
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", FAKE_CALLS=str(tmp_path / "calls"))
    return env


def launch(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LAUNCH), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_launch_refuses_a_config_with_placeholders(tools: dict[str, str], name: str) -> None:
    result = launch(tools, f"cluster/{name}")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    first = next(
        n
        for n, text in enumerate((CLUSTER / name).read_text().splitlines(), 1)
        if PLACEHOLDER in text.split(" #")[0] and not text.lstrip().startswith("#")
    )
    assert line.startswith(f"launch.sh: cluster/{name}:{first}: SET-ME is a placeholder"), line
    assert "cluster/README.md" in line
    assert not Path(tools["FAKE_CALLS"]).exists()


@pytest.mark.parametrize(
    ("name", "tool", "expected"),
    [
        ("aws.yaml", "ray", ["up", "{config}", "--yes"]),
        ("gcp.yaml", "ray", ["up", "{config}", "--yes"]),
        ("rayjob.yaml", "kubectl", ["apply", "-f", "{config}", "--yes"]),
    ],
)
def test_launch_runs_the_tool_once_filled(
    tools: dict[str, str], tmp_path: Path, name: str, tool: str, expected: list[str]
) -> None:
    config = tmp_path / name
    config.write_text(fill((CLUSTER / name).read_text()))
    result = launch(tools, str(config), "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = Path(tools["FAKE_CALLS"]).read_text().splitlines()
    assert calls == [tool, *(a.format(config=config) for a in expected), f"cwd={ROOT}"]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_launch_refuses_a_world_open_cidr(tools: dict[str, str], tmp_path: Path, cidr: str) -> None:
    config = tmp_path / "rayjob.yaml"
    config.write_text(fill((CLUSTER / "rayjob.yaml").read_text()).replace(str(JOB_API_CIDR), cidr))
    result = launch(tools, str(config))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "open to the whole internet" in line and cidr in line
    assert not Path(tools["FAKE_CALLS"]).exists()


@pytest.mark.parametrize(
    ("args", "cause"),
    [([], "missing CONFIG"), (["--bogus"], "unknown option"), (["no/such.yaml"], "not found")],
)
def test_launch_bad_input_is_one_line_exit_2(
    tools: dict[str, str], args: list[str], cause: str
) -> None:
    result = launch(tools, *args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert cause in line


def test_launch_help_exits_zero() -> None:
    result = subprocess.run([str(LAUNCH), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cluster/launch.sh")
