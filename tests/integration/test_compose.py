"""docker-compose.yaml and the Dockerfile, checked as far as possible without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from tests_support import TEST_SIGNING_KEY

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
LONG_RUNNING = [name for name in SERVICES if name != "airflow-init"]
UNSUBSCRIBE_ENV = ("SEGMAIL_PUBLIC_URL", "SEGMAIL_UNSUBSCRIBE_MAILTO", "AIRFLOW_CONN_SEGMAIL_SIGNING")


def test_the_stack_has_every_part_of_a_celery_deployment():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "mailpit",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-init",
        "segmail-public",
        "kannel",
        "phones",
    }
    env = SERVICES["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert (
        env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        and "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    )


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_service_has_a_command_and_a_health_check(name):
    service = SERVICES[name]
    assert service.get("command"), f"{name} has no command"
    test = service["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_airflow_services_run_their_component():
    commands = {
        name: SERVICES[name]["command"]
        for name in SERVICES
        if name.startswith("airflow-") and name != "airflow-init"
    }
    assert commands == {
        "airflow-apiserver": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer"],
        "airflow-worker": ["celery", "worker"],
    }


def test_init_migrates_both_databases_and_creates_the_pool():
    script = SERVICES["airflow-init"]["command"][1]
    for step in ("airflow db migrate", "segmail db upgrade", "airflow pools set smtp"):
        assert step in script
    for name in LONG_RUNNING:
        if name.startswith("airflow-"):
            assert (
                SERVICES[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
            )


@pytest.mark.parametrize("name", list(SERVICES))
def test_bind_mounts_point_at_existing_files(name):
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith((".", "/")):
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        else:
            assert source in COMPOSE["volumes"], f"{name}: named volume {source} is not declared"


def test_environment_names_the_connections_the_dags_use():
    from segmail.mailings.definition import load_mailings
    from segmail.settings import DB_CONN_ID, SIGNING_CONN_ID

    env = COMPOSE["x-airflow-common"]["environment"]
    mailings, errors = load_mailings(ROOT / "include" / "mailings")
    assert not errors
    needed = {DB_CONN_ID, SIGNING_CONN_ID} | {m.smtp_conn_id for m in mailings.values()}
    for conn_id in needed:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, conn_id
    assert "@postgres:5432/segmail" in env["AIRFLOW_CONN_SEGMAIL_DB"]
    assert env["AIRFLOW_CONN_SMTP_DEFAULT"].startswith("smtp://mailpit:1025")
    assert "CREATE DATABASE segmail" in (ROOT / "docker" / "postgres-init.sql").read_text()


@pytest.mark.parametrize("name", list(SERVICES))
def test_images_are_pinned(name):
    image = SERVICES[name].get("image") or COMPOSE["x-airflow-common"]["image"]
    repository, _, tag = image.rpartition(":")
    assert repository and tag and tag != "latest" and re.search(r"\d", tag), image


def test_dockerfile_builds_on_the_pinned_airflow_image_with_the_lock_file():
    dockerfile = (ROOT / "Dockerfile").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    airflow_version = re.search(r"^apache-airflow==(\S+)$", lock, re.M).group(1)
    assert f"FROM apache/airflow:{airflow_version}-python3.11" in dockerfile
    assert "-c /opt/segmail/requirements.lock" in dockerfile
    for source in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path


def test_no_secret_is_written_into_the_compose_file():
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "FERNET_KEY: ${AIRFLOW_FERNET_KEY" in text
    assert not re.search(r"PASSWORD: (?!\$\{)", text)
    # The signing key comes from the environment (.env) and has no default: compose refuses to start.
    signing = json.loads(COMPOSE["x-segmail-unsubscribe-env"]["AIRFLOW_CONN_SEGMAIL_SIGNING"])
    assert re.fullmatch(r"\$\{SEGMAIL_SIGNING_KEY:\?[^}]+\}", signing["password"])
    assert re.fullmatch(r"\$\{SEGMAIL_SIGNING_PREVIOUS_KEY:-\}", signing["extra"]["previous_keys"])
    assert "TEST_SIGNING_KEY" not in text and TEST_SIGNING_KEY.decode() not in text
    local_key = ROOT / ".airflow" / "segmail_signing_key"  # what `make demo` generated, if it ran here
    if local_key.exists():
        assert local_key.read_text().strip() not in text


def unsubscribe_settings(env: dict) -> dict:
    return {name: env.get(name) for name in UNSUBSCRIBE_ENV}


def test_every_segmail_process_gets_the_unsubscribe_settings_and_the_signing_connection():
    expected = COMPOSE["x-segmail-unsubscribe-env"]
    assert set(expected) == set(UNSUBSCRIBE_ENV)
    for name, service in SERVICES.items():
        if name.startswith("airflow-") or name == "segmail-public":
            assert unsubscribe_settings(service["environment"]) == expected, name
    assert expected["SEGMAIL_PUBLIC_URL"] == "${SEGMAIL_PUBLIC_URL:-http://localhost:8090}"
    assert expected["SEGMAIL_UNSUBSCRIBE_MAILTO"].endswith("unsubscribe@autohaus-demo.example}")


def test_the_public_app_runs_alone_on_segmails_database():
    public = SERVICES["segmail-public"]
    assert public["command"] == ["segmail", "serve-public", "--host", "0.0.0.0", "--port", "8090"]
    # Not the image's /entrypoint, which would run `airflow segmail ...`; no Airflow configuration.
    assert public["entrypoint"] == ["/usr/bin/dumb-init", "--"]
    assert not [key for key in public["environment"] if key.startswith("AIRFLOW__")]
    assert public["image"] == COMPOSE["x-airflow-common"]["image"]
    assert public["ports"] == ["8090:8090"]
    assert public["healthcheck"]["test"][-1] == "http://localhost:8090/healthz"
    env = public["environment"]
    assert (
        env["AIRFLOW_CONN_SEGMAIL_DB"]
        == COMPOSE["x-airflow-common"]["environment"]["AIRFLOW_CONN_SEGMAIL_DB"]
    )
    assert env["SEGMAIL_INCLUDE_DIR"] == "/opt/airflow/include"  # the mailings' languages for the page
    assert "./include:/opt/airflow/include:ro" in public["volumes"]
    assert public["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_sms_goes_through_the_kannel_service_and_reports_come_back_inside_the_network():
    env = COMPOSE["x-airflow-common"]["environment"]
    sms = json.loads(env["AIRFLOW_CONN_SMS_DEFAULT"])
    kannel = SERVICES["kannel"]
    assert (sms["host"], sms["port"]) == ("kannel", 13013)
    assert sms["password"] == kannel["environment"]["KANNEL_SENDSMS_PASSWORD"]
    start = (ROOT / "docker" / "kannel" / "start.sh").read_text()
    assert "sendsms-port = 13013" in start and f"username = {sms['login']}" in start
    # Kannel reaches the public app by its service name; recipients keep SEGMAIL_PUBLIC_URL.
    assert env["SEGMAIL_SMS_CALLBACK_URL"] == "http://segmail-public:8090"
    assert "8090:8090" in SERVICES["segmail-public"]["ports"]
    assert "airflow pools set sms" in " ".join(SERVICES["airflow-init"]["command"])
    phones = SERVICES["phones"]["command"]
    assert phones[0] == "/usr/lib/kannel/test/fakesmsc" and phones[phones.index("-r") + 1] == "10000"
    assert "port = 10000" in start


def test_the_kannel_image_pins_debian_and_kannel():
    dockerfile = (ROOT / "docker" / "kannel" / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:bookworm-\d{8}-slim$", dockerfile, re.M)
    assert "kannel=1.4.5-12" in dockerfile and "kannel-extras=1.4.5-12" in dockerfile
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        assert (ROOT / "docker" / "kannel" / source).exists(), source
