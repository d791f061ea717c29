"""The production docker-compose.yml and Dockerfile, checked without Docker.

Docker cannot run in CI here, so these tests read the files and check the
wiring that would otherwise only fail on a real `docker compose up`: which
service talks to which, start order, the codec endpoint, search attributes,
exposed ports, secrets and the image's user.

Port policy: every published port is bound to 127.0.0.1, and only the API and
the Temporal UI publish one. A reverse proxy with TLS fronts them.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from workflows.visibility import DEV_SERVER_TYPES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

STEWARD_SERVICES = ("migrate", "worker", "api")
ONE_SHOT_SERVICES = ("temporal-schema", "temporal-setup", "migrate")
LONG_RUNNING_SERVICES = (
    "temporal-db",
    "temporal",
    "temporal-ui",
    "app-db",
    "worker",
    "api",
    "prometheus",
    "grafana",
)
PUBLISHING_SERVICES = {"api", "temporal-ui", "grafana"}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with an empty environment; required ${VAR:?} -> <VAR>."""

    def repl(match: re.Match[str]) -> str:
        op = match.group("op") or ""
        if op.endswith("-"):
            return match.group("arg")
        return f"<{match.group('name')}>"

    return _VARIABLE.sub(repl, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) for item in raw)
        raw = {k: v for k, v in pairs}
    return {str(k): interpolate(str(v)) for k, v in raw.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def published_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports") or []:
        assert isinstance(port, str), f"use the short string syntax for ports: {port!r}"
        ports.append(interpolate(port))
    return ports


# ---------------------------------------------------------------- services


def test_every_service_exists(services: dict[str, Any]) -> None:
    expected = {
        "temporal-db",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "app-db",
        "migrate",
        "worker",
        "api",
        "prometheus",
        "grafana",
    }
    assert expected <= set(services)


def test_steward_services_run_the_built_image(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in STEWARD_SERVICES}
    assert len(images) == 1, f"migrate, worker and api must share one image, got {images}"
    assert interpolate(images.pop()).startswith("steward:")
    for name in STEWARD_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert context == ".", f"{name} must be built from the repository's Dockerfile"


def test_steward_commands(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["migrate"]
    assert services["worker"]["command"] == ["worker"]
    assert services["api"]["command"] == ["api"]


@pytest.mark.parametrize("name", STEWARD_SERVICES)
def test_steward_services_point_at_temporal_and_app_db(services: dict[str, Any], name: str) -> None:
    values = env(services[name])
    host, _, port = values["TEMPORAL_ADDRESS"].partition(":")
    assert (host, port) == ("temporal", "7233")

    url = urlsplit(values["DATABASE_URL"])
    assert url.scheme in ("postgresql", "postgres")
    assert (url.hostname, url.port, url.path) == ("app-db", 5432, "/steward")
    assert url.username == env(services["app-db"])["POSTGRES_USER"]
    # The password comes from .env, never from the file.
    assert url.password == "<STEWARD_DB_PASSWORD>"
    assert env(services["app-db"])["POSTGRES_PASSWORD"] == "<STEWARD_DB_PASSWORD>"


def test_only_the_api_listens_on_all_interfaces_inside_its_container(
    services: dict[str, Any],
) -> None:
    assert env(services["api"])["STEWARD_API_HOST"] == "0.0.0.0"
    for name in ("worker", "migrate"):
        assert "STEWARD_API_HOST" not in env(services[name])


def test_temporal_runs_on_its_own_postgres(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/server:")
    values = env(temporal)
    assert values["DB"] == "postgres12"
    assert values["POSTGRES_SEEDS"] == "temporal-db"
    assert values["POSTGRES_USER"] == env(services["temporal-db"])["POSTGRES_USER"]
    assert values["POSTGRES_PWD"] == "<TEMPORAL_DB_PASSWORD>"
    for name in ("temporal-db", "app-db"):
        assert services[name]["image"] == "postgres:16"


def test_temporal_versions_match(services: dict[str, Any]) -> None:
    # Schema tooling must come from the same release as the server it prepares.
    server_version = services["temporal"]["image"].split(":")[1]
    for name in ("temporal-schema", "temporal-setup"):
        image = services[name]["image"]
        assert image == f"temporalio/admin-tools:{server_version}"


# -------------------------------------------------------------- start order


def test_start_order(services: dict[str, Any]) -> None:
    healthy, done = "service_healthy", "service_completed_successfully"
    assert depends_on(services["temporal-schema"]) == {"temporal-db": healthy}
    assert depends_on(services["temporal"]) == {"temporal-db": healthy, "temporal-schema": done}
    assert depends_on(services["temporal-setup"]) == {"temporal": healthy}
    assert depends_on(services["temporal-ui"]) == {"temporal": healthy}
    assert depends_on(services["migrate"]) == {"app-db": healthy}
    for name in ("worker", "api"):
        assert depends_on(services[name]) == {
            "migrate": done,
            "temporal-setup": done,
            "app-db": healthy,
        }


def test_healthy_conditions_have_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} needs a healthcheck"
    assert "healthcheck" in services["api"]


def test_restart_policies(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING_SERVICES:
        assert services[name].get("restart") in ("unless-stopped", "always"), name
    for name in ONE_SHOT_SERVICES:
        # A one-shot that restarts forever never "completes successfully".
        assert str(services[name].get("restart", "no")).startswith(("no", "on-failure")), name


def test_worker_scales_out(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")


# ------------------------------------------------------------ UI and codec


def test_ui_points_at_temporal_and_the_codec(services: dict[str, Any]) -> None:
    values = env(services["temporal-ui"])
    assert values["TEMPORAL_ADDRESS"] == "temporal:7233"
    codec = urlsplit(values["TEMPORAL_CODEC_ENDPOINT"])
    assert codec.path == "/codec"
    assert codec.hostname in ("localhost", "127.0.0.1")
    # The browser reaches the API on its published port.
    api_host_ports = {p.split(":")[1] for p in published_ports(services["api"])}
    assert str(codec.port) in api_host_ports


def test_api_allows_the_ui_origin(services: dict[str, Any]) -> None:
    ui_host_port = published_ports(services["temporal-ui"])[0].split(":")[1]
    assert env(services["api"])["STEWARD_TEMPORAL_UI_PORT"] == ui_host_port


# ------------------------------------------------------- search attributes


def test_every_search_attribute_is_registered(services: dict[str, Any]) -> None:
    setup = services["temporal-setup"]
    registered = dict(
        pair.split("=", 1) for pair in env(setup)["STEWARD_SEARCH_ATTRIBUTES"].split()
    )
    assert registered == DEV_SERVER_TYPES
    script = _mounted_script(setup)
    text = script.read_text(encoding="utf-8")
    assert "search-attribute create" in text
    assert "$STEWARD_SEARCH_ATTRIBUTES" in text


def _mounted_script(service: dict[str, Any]) -> Path:
    entrypoint = service["entrypoint"]
    container_path = entrypoint[-1]
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if target == container_path:
            path = ROOT / source
            assert path.is_file(), f"{source} is mounted but missing"
            return path
    raise AssertionError(f"{container_path} is not mounted")


@pytest.mark.parametrize("name", ["temporal-schema", "temporal-setup"])
def test_setup_scripts_are_valid_sh(services: dict[str, Any], name: str) -> None:
    script = _mounted_script(services[name])
    sh = shutil.which("sh")
    assert sh is not None, "a POSIX sh is needed to check the compose setup scripts"
    subprocess.run([sh, "-n", str(script)], check=True)


def test_dynamic_config_is_mounted(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    relative = env(temporal)["DYNAMIC_CONFIG_FILE_PATH"]  # relative to /etc/temporal
    for volume in temporal["volumes"]:
        source, target = volume.split(":")[:2]
        if f"/etc/temporal/{relative}".startswith(target + "/"):
            config = ROOT / source / Path(relative).name
            assert config.is_file()
            assert isinstance(yaml.safe_load(config.read_text(encoding="utf-8")), dict)
            return
    raise AssertionError("the dynamic config directory is not mounted")


# ------------------------------------------------- ports, volumes, secrets


def test_published_ports_are_loopback_only(services: dict[str, Any]) -> None:
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == PUBLISHING_SERVICES
    for name in publishing:
        for port in published_ports(services[name]):
            parts = port.split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", (
                f"{name} publishes {port!r}; bind it to 127.0.0.1"
            )


def test_databases_keep_their_data_in_named_volumes(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    assert {"temporal-db", "app-db"} <= declared
    for name in ("temporal-db", "app-db"):
        mounts = dict(v.split(":")[:2] for v in services[name]["volumes"])
        assert mounts.get(name) == "/var/lib/postgresql/data"
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_codec_keyring_is_a_secret(compose: dict[str, Any], services: dict[str, Any]) -> None:
    secret = compose["secrets"]["codec_keyring"]
    assert secret["file"].startswith("./deploy/secrets/")
    for name in ("worker", "api"):
        assert "codec_keyring" in services[name]["secrets"]
        assert env(services[name])["STEWARD_CODEC_KEYRING"] == "/run/secrets/codec_keyring"
    # The keyring never travels in an environment variable.
    for service in services.values():
        for value in env(service).values():
            assert '"keys"' not in value


def test_secrets_dir_is_ignored_by_git() -> None:
    ignore = (ROOT / "deploy" / "secrets" / ".gitignore").read_text(encoding="utf-8")
    assert ignore.splitlines()[0] == "*"


# -------------------------------------------------------------- Dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(starts) >= 2, "the Dockerfile must be multi-stage"
    return instructions[starts[-1] :]


def test_dockerfile_base_and_build() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "python:3.11-slim" in text
    run_lines = [rest for keyword, rest in _instructions(text) if keyword == "RUN"]
    assert any(re.search(r"pip install \.(\s|$)", line) for line in run_lines)


def test_dockerfile_runs_as_non_root() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_entrypoint_is_steward() -> None:
    entrypoints = [rest for keyword, rest in _final_stage() if keyword == "ENTRYPOINT"]
    assert entrypoints
    last = entrypoints[-1]
    args = yaml.safe_load(last) if last.startswith("[") else shlex.split(last)
    assert args == ["steward"]


def test_dockerignore_keeps_secrets_and_venv_out() -> None:
    ignored = set(DOCKERIGNORE.read_text(encoding="utf-8").split())
    assert {".venv", ".git", ".env", "deploy"} <= ignored


def test_api_lets_the_ui_browser_use_the_codec(services: dict[str, Any]) -> None:
    # Without it the UI (whose browser calls come through Docker's gateway and
    # carry no API key) would get 401 from /codec and show encrypted payloads.
    networks = env(services["api"])["STEWARD_CODEC_TRUSTED_NETWORKS"]
    assert "172.16.0.0/12" in networks


# ------------------------------------------------- Settings <-> environment

ENV_EXAMPLE = ROOT / "deploy" / "env.example"
# Settings variables a production container does not get, and why.
EMBEDDED_ONLY = {
    # The embedded stack's files and servers; compose sets TEMPORAL_ADDRESS,
    # DATABASE_URL and STEWARD_CODEC_KEYRING instead.
    "STEWARD_DATA_DIR",
    "STEWARD_TEMPORAL_PORT",
    "STEWARD_POSTGRES_PORT",
    # Fault injection into the simulated outside world (bench, chaos runs).
    "STEWARD_SIM_LATENCY_MS",
    "STEWARD_SIM_FAILURE_RATE",
    "STEWARD_SIM_CONTROL_FILE",
}
# The API's listener, its keys and the browser's codec access: api only.
API_ONLY = {
    "STEWARD_API_HOST",
    "STEWARD_API_PORT",
    "STEWARD_TEMPORAL_UI_PORT",
    "STEWARD_CODEC_TRUSTED_NETWORKS",
    "STEWARD_API_KEYS",
}
# Compose defaults that differ from Settings' on purpose: the UI browser's
# codec calls come through Docker's gateway network.
COMPOSE_OWN_DEFAULTS = {"STEWARD_CODEC_TRUSTED_NETWORKS"}


def settings_variables() -> dict[str, str]:
    """Variable name -> Settings field name, for every field."""
    from workers.settings import Settings

    found = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), f"{name} must name its variable"
        found[alias] = name
    return found


def test_exemptions_name_real_settings() -> None:
    assert set(settings_variables()) >= (EMBEDDED_ONLY | API_ONLY)


@pytest.mark.parametrize("name", STEWARD_SERVICES)
def test_every_setting_reaches_the_containers_that_read_it(
    services: dict[str, Any], name: str
) -> None:
    # Settings validates provider credentials at every start, so the worker,
    # the API and the migrations all get the same provider variables.
    wanted = set(settings_variables()) - EMBEDDED_ONLY - API_ONLY
    if name == "api":
        wanted |= API_ONLY
    missing = wanted - set(env(services[name]))
    assert not missing, f"{name} lacks {sorted(missing)} in docker-compose.yml"


@pytest.mark.parametrize("name", STEWARD_SERVICES)
def test_no_container_variable_is_unknown_to_settings(services: dict[str, Any], name: str) -> None:
    unknown = set(env(services[name])) - set(settings_variables())
    assert not unknown, f"{name} sets {sorted(unknown)}, which Settings does not read"


@pytest.mark.parametrize("name", STEWARD_SERVICES)
def test_compose_defaults_are_settings_defaults(services: dict[str, Any], name: str) -> None:
    """With .env empty, each container starts with Settings' own defaults."""
    from workers.settings import Settings

    variables = settings_variables()
    values = env(services[name])
    placeholders = {k for k, v in values.items() if v.startswith("<") or "<" in v}
    settings = Settings(
        _env_file=None, **{k: v for k, v in values.items() if k not in placeholders}
    )  # type: ignore[arg-type]
    passed_through = {
        k
        for k, raw in (services[name].get("environment") or {}).items()
        if str(raw).startswith(f"${{{k}:-")
    }
    assert passed_through, "the provider variables are passed through from .env"
    for variable in passed_through - placeholders - COMPOSE_OWN_DEFAULTS:
        field = variables[variable]
        assert getattr(settings, field) == Settings.model_fields[field].get_default(
            call_default_factory=True
        ), f"{variable}: compose's default differs from Settings'"


def test_env_example_lists_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = {m.group("name") for m in _VARIABLE.finditer(text)}
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert not used - listed, f"deploy/env.example lacks {sorted(used - listed)}"
    assert not listed - used, f"deploy/env.example sets {sorted(listed - used)}, unused"


# ------------------------------------------------------------- live metrics

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


def test_prometheus_scrapes_the_api_and_every_worker(services: dict[str, Any]) -> None:
    from workers.settings import Settings

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["steward-api"]["static_configs"][0]["targets"] == ["api:8400"]
    assert jobs["steward-api"]["metrics_path"] == "/metrics"
    worker_env = env(services["worker"])
    # Every worker of `--scale worker=N`: the service name resolves to each.
    for job, variable in (
        ("steward-worker", "STEWARD_WORKER_METRICS_PORT"),
        ("temporal-sdk", "STEWARD_TEMPORAL_METRICS_PORT"),
    ):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == ["worker"] and str(sd["port"]) == worker_env[variable]
    # Reachable from Prometheus's container, not only from the worker's own loopback.
    assert worker_env["STEWARD_METRICS_HOST"] == "0.0.0.0"
    settings = Settings(_env_file=None)
    assert (settings.worker_metrics_port, settings.temporal_metrics_port) == (9464, 9465)
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert depends_on(services["prometheus"]) == {"api": "service_healthy"}


def test_grafana_provisions_prometheus_and_the_dashboard(services: dict[str, Any]) -> None:
    from workers.metrics import REGISTRY

    grafana = services["grafana"]
    assert depends_on(grafana) == {"prometheus": "service_healthy"}
    assert env(grafana)["GF_SECURITY_ADMIN_PASSWORD"] == "<GRAFANA_ADMIN_PASSWORD>"
    mounts = dict(v.rsplit(":", 2)[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == "/etc/grafana/dashboards"
    source = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "steward.yml").read_text()
    )["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"
    dashboard = json.loads((GRAFANA_DIR / "dashboards" / "steward.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    # Every Steward metric a panel queries is one the processes export.
    exported = {m.name for m in REGISTRY.collect()}
    queried = set(re.findall(r"\b(steward_[a-z_]+)", " ".join(exprs)))
    known = exported | {f"{name}_total" for name in exported}
    assert queried and queried <= known, sorted(queried - known)
    # And the Temporal SDK's (its counters have no _total suffix).
    assert any("temporal_activity_execution_latency_bucket" in e for e in exprs)
    assert all(
        t["datasource"]["uid"] == source["uid"] for p in dashboard["panels"] for t in p["targets"]
    )


def test_reports_are_shared_between_the_workers_and_the_api(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    directory = env(services["worker"])["STEWARD_REPORTS_DIR"]
    assert f"reports:{directory}" in services["worker"]["volumes"]
    assert f"reports:{directory}:ro" in services["api"]["volumes"]
    assert "reports" in compose["volumes"]
    # The image's user owns the directory the volume is mounted on.
    assert f"/var/lib/steward {directory}" in DOCKERFILE.read_text(encoding="utf-8")
