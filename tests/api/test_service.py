"""The service around the routes: `edgebatch api` refuses to start without a secret, its
user and token commands store only hashes, and /healthz, /readyz and /metrics answer."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from edgebatch.api.server import check_startable
from edgebatch.cli.main import main
from edgebatch.errors import ConfigError
from edgebatch.framework.state import StateStore
from tests.api.conftest import Api, bearer, make_settings, open_api
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def test_the_api_refuses_to_start_without_a_secret_unless_in_demo_mode(tmp_path):
    config = tmp_path / "edgebatch.toml"
    config.write_text("[api]\nport = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "edgebatch.cli", "--config", str(config), "api"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "[api] secret is not set" in done.stderr and "demo = true" in done.stderr
    with pytest.raises(ConfigError, match="secret"):
        check_startable(make_settings(tmp_path, "sqlite://", secret=""))
    check_startable(make_settings(tmp_path, "sqlite://", secret="", demo=True))


def test_users_and_tokens_from_the_command_line(tmp_path, monkeypatch, capsys):
    config = tmp_path / "edgebatch.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')
    monkeypatch.setattr(sys, "stdin", io.StringIO("long-password\n"))
    assert (
        main(
            [
                "--config",
                str(config),
                "api",
                "user",
                "add",
                "ann",
                "--role",
                "operator",
                "--tenant",
                "acme",
                "--password-stdin",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "--config",
                str(config),
                "api",
                "token",
                "create",
                "--name",
                "ci",
                "--role",
                "viewer",
                "--tenant",
                "*",
            ]
        )
        == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("eb_")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        user = store.get_user("ann")
        assert user is not None and "long-password" not in user.password_hash
        stored = store.list_tokens()[0]
        assert token not in (stored.token_hash, stored.prefix) and token.startswith(stored.prefix)
        assert [a.action for a in store.list_audit()] == ["token.create", "user.add"]
    with pytest.raises(SystemExit):  # no tenants named: a usage error
        main(["--config", str(config), "api", "token", "create", "--name", "x"])


def test_health_readiness_and_metrics(tmp_path, broker: Mosquitto):
    gen = open_api(tmp_path, f"sqlite:///{tmp_path / 's.db'}", mqtt_port=broker.port)
    api: Api = next(gen)
    try:
        api.store.create_run("device_daily", params={"tenant": "acme"})
        assert api.client.get("/healthz").json()["status"] == "ok"
        ready = api.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert api.client.get("/healthz", params={"ready": 1}).json()["status"] == "ready"
        assert api.client.get("/metrics").status_code == 401
        text = api.client.get("/metrics", headers=api.as_("viewer")).text
        assert 'edgebatch_runs{state="queued"} 1.0' in text
        assert 'edgebatch_queue_depth{queue="default",state="queued"} 1.0' in text
        assert "edgebatch_iteration_duration_seconds_bucket" in text
        assert "edgebatch_workers_alive 0.0" in text
    finally:
        gen.close()
    down = open_api(tmp_path / "down", f"sqlite:///{tmp_path / 'd.db'}", mqtt_port=1)
    api = next(down)
    try:
        answer = api.client.get("/readyz")
        assert answer.status_code == 503 and "unreachable" in answer.json()["checks"]["broker"]
        assert api.client.get("/metrics", headers=bearer("eb_nope")).status_code == 401
    finally:
        down.close()
