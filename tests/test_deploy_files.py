"""The Dockerfile, deploy/compose.yaml and deploy/kubernetes/ are linted and validated."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.app import create_app
from cds_service.config import DEFAULTS
from cds_service.guideline.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUBE = ROOT / "deploy" / "kubernetes"
SITE_POLICY = ROOT / "deploy" / "compose" / "site-policy.yaml"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests promise to work on
# Measured (docs/deployment.md): worker peak RSS 112 MiB, gunicorn master 80 MiB.
WORKER_MIB, MASTER_MIB = 112, 80
# What `docker compose` would read from deploy/.env (compose/env.example, filled in).
COMPOSE_ENV = {
    "CDS_PUBLIC_BASE_URL": "https://cds.hospital.example.org",
    "CDS_DB_PASSWORD": "secret",
    "CDS_AUDIT_HASH_KEY": "0" * 64,
}


def _tool(name: str) -> str:
    """A console script installed beside this interpreter (the dev extras), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: `make .venv/.installed` installs the dev extras")
    return found


# --- Dockerfile -------------------------------------------------------------------------------


def _hadolint(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    command = [_tool("hadolint"), "--no-color", "--format", "tty", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    result = _hadolint(DOCKERFILE.read_text(), tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_refuse_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = "FROM python:latest\nRUN apt-get update && apt-get install gcc\nCMD python app.py\n"
    result = _hadolint(careless, tmp_path)
    assert result.returncode != 0
    assert {"DL3007", "DL3008", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def _stages(text: str) -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) grouped by FROM."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_final_stage_is_non_root_with_no_build_tools_and_serves() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    assert re.search(r"slim", DOCKERFILE.read_text().split("FROM", 1)[0] + stages[0][0])
    final = stages[-1]
    body = "\n".join(final)
    user = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert "apt-get" not in body and "pip install" not in body
    assert not re.search(r"\b(gcc|build-essential|make|git)\b", body)
    assert re.search(r"HEALTHCHECK .*127\.0\.0\.1:8080/healthz", body)
    assert 'ENTRYPOINT ["cds-service"]' in final
    cmd = json.loads(next(line for line in final if line.startswith("CMD "))[4:])
    assert cmd[0] == "serve" and "0.0.0.0" in cmd
    # Configuration only through CDS_* variables: the image sets nothing else of the service's.
    service_env = re.findall(r"\b(CDS_[A-Z_]+)=", body)
    assert set(service_env) <= {"CDS_DATA_DIR"}


def test_serve_leaves_gunicorn_control_socket_off() -> None:
    """gunicorn 27 would put one per user in $HOME: replicas on one host fight over it, and a
    read-only container has nowhere to put it."""
    from cds_service.serve import _Gunicorn

    server = _Gunicorn({"bind": "127.0.0.1:0"}, create_app)
    if "control_socket_disable" not in server.cfg.settings:
        pytest.skip("this gunicorn has no control socket")
    assert server.cfg.control_socket_disable is True


# --- compose ----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${X}, ${X:-default}, ${X:?error}."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        current = env.get(name, "")
        if operator == ":?" and not current:
            raise ValueError(f"{name}: {argument}")
        return current or (argument if operator == ":-" else "")

    return _VARIABLE.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """deploy/compose.yaml as `docker compose config` would see it, checked by compose-spec."""
    from compose_spec import PyCompose

    document = yaml.safe_load(_interpolate(COMPOSE.read_text(), COMPOSE_ENV))  # merges <<
    parsed = PyCompose.from_json(json.dumps(document))  # raises ValueError naming the problem
    parsed.to_spec()
    return document


def test_compose_validator_refuses_a_misspelt_key() -> None:
    from compose_spec import PyCompose

    document = yaml.safe_load(_interpolate(COMPOSE.read_text(), COMPOSE_ENV))
    document["services"]["cds"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(ValueError, match="intervall"):
        PyCompose.from_json(json.dumps(document))


def test_compose_refuses_to_start_without_the_required_settings() -> None:
    with pytest.raises(ValueError, match="CDS_PUBLIC_BASE_URL"):
        _interpolate(COMPOSE.read_text(), {**COMPOSE_ENV, "CDS_PUBLIC_BASE_URL": ""})


def test_compose_runs_replicas_after_a_one_shot_migration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "cds", "proxy"} <= set(services)
    cds, migrate = services["cds"], services["migrate"]
    assert cds["deploy"]["replicas"] >= 3
    assert migrate["command"] == ["db", "upgrade"] and migrate["restart"] == "no"
    assert migrate["image"] == cds["image"]
    assert cds["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert cds["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert cds["depends_on"]["redis"]["condition"] == "service_healthy"
    assert cds["command"][0] == "serve"
    env = cds["environment"]
    assert (
        env["CDS_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:" in env["CDS_DATABASE_URL"]
    )
    assert env["CDS_REDIS_URL"].startswith("redis://redis:")
    assert env["CDS_PUBLIC_BASE_URL"] == COMPOSE_ENV["CDS_PUBLIC_BASE_URL"]
    assert {name.removeprefix("CDS_") for name in env} <= set(DEFAULTS)
    memory = cds["deploy"]["resources"]["reservations"]["memory"]
    assert int(memory.rstrip("M")) >= MASTER_MIB + 2 * WORKER_MIB


def test_compose_files_it_mounts_exist_and_the_proxy_uses_the_tested_config(
    compose: dict[str, Any],
) -> None:
    base = COMPOSE.parent
    for section in ("secrets", "configs"):
        for entry in compose[section].values():
            path = base / entry["file"]
            assert (
                path.exists()
                or path.with_name(path.name.replace(".json", ".example.json")).exists()
            ), path
    mounts = compose["services"]["proxy"]["volumes"]
    assert "./compose/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    load_knowledge(str(SITE_POLICY))  # a site policy the service accepts


def test_proxy_config_buffers_spreads_and_forwards_what_the_service_needs() -> None:
    text = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    for directive in (
        "proxy_request_buffering on;",
        "proxy_buffering on;",
        "least_conn;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "client_max_body_size 32m;",
        "proxy_next_upstream error timeout;",
    ):
        assert directive in text


def test_proxy_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "multi_instance"))
    try:
        from cluster import NGINX, Instance, proxy_config
    finally:
        sys.path.pop(0)
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx)")
    instances = [Instance(f"cds-{n}", 18080 + n, {}, tmp_path / "log") for n in range(3)]
    conf = tmp_path / "nginx.conf"
    conf.write_text(proxy_config(instances, 18079, tmp_path))
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- Kubernetes -------------------------------------------------------------------------------


def _manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(KUBE.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


MANIFESTS = list(_manifests())


def _kind(kind: str) -> dict[str, Any]:
    [found] = [doc for _, doc in MANIFESTS if doc["kind"] == kind]
    return found


@pytest.mark.parametrize(("name", "manifest"), MANIFESTS, ids=[n for n, _ in MANIFESTS])
def test_manifest_validates_against_the_kubernetes_schema(
    name: str, manifest: dict[str, Any]
) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_schema_check_refuses_a_misspelt_probe() -> None:
    import kubernetes_validate

    deployment = json.loads(json.dumps(_kind("Deployment")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_the_manifests_except_the_examples_and_the_job() -> None:
    listed = set(yaml.safe_load((KUBE / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml", "migration-job.yaml"}


def test_deployment_probes_resources_secret_and_configmap() -> None:
    deployment = _kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][0] == "serve"
    workers = int(container["args"][container["args"].index("--workers") + 1])
    request = container["resources"]["requests"]["memory"]
    assert request.endswith("Mi") and int(request[:-2]) >= MASTER_MIB + workers * WORKER_MIB
    env = {item["name"]: item for item in container["env"]}
    assert {name.removeprefix("CDS_") for name in env} <= set(DEFAULTS)
    for secret_backed in ("CDS_DATABASE_URL", "CDS_REDIS_URL", "CDS_AUDIT_HASH_KEY"):
        assert env[secret_backed]["valueFrom"]["secretKeyRef"]["name"] == "cds-service"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    issuers_dir = str(Path(env["CDS_TRUSTED_ISSUERS_FILE"]["value"]).parent)
    policy_dir = str(Path(env["CDS_SITE_POLICY_FILE"]["value"]).parent)
    assert volumes[mounts[issuers_dir]]["secret"]["secretName"] == "cds-service"
    assert volumes[mounts[policy_dir]]["configMap"]["name"] == "cds-site-policy"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_pdb_and_hpa_select_the_deployment_pods() -> None:
    deployment = _kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service, pdb, hpa = (
        _kind("Service"),
        _kind("PodDisruptionBudget"),
        _kind("HorizontalPodAutoscaler"),
    )
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["maxUnavailable"] == 1


def test_migration_job_runs_db_upgrade_with_the_database_secret() -> None:
    job = _kind("Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["db", "upgrade"]
    assert (
        container["image"]
        == _kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    [env] = container["env"]
    assert (
        env["name"] == "CDS_DATABASE_URL"
        and env["valueFrom"]["secretKeyRef"]["name"] == "cds-service"
    )


def test_configmap_carries_the_site_policy_the_service_accepts(tmp_path: Path) -> None:
    policy = _kind("ConfigMap")["data"]["site-policy.yaml"]
    assert yaml.safe_load(policy) == yaml.safe_load(SITE_POLICY.read_text())
    path = tmp_path / "site-policy.yaml"
    path.write_text(policy)
    load_knowledge(str(path))
    secret = _kind("Secret")["stringData"]
    assert {"database-url", "redis-url", "trusted-issuers.json"} <= set(secret)
