"""What a job declares about notifications is checked when it loads: contacts, events and
SLA, each error naming the job and the field; `[notify]` errors name the key and file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgebatch.errors import ConfigError
from edgebatch.framework.errors import JobDefinitionError
from edgebatch.framework.notify.contacts import (
    Channel,
    Contact,
    parse_contact,
    parse_duration,
)
from edgebatch.settings import load_settings
from tests.framework.notify.conftest import make_job


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ops@plant.test", Contact(Channel.EMAIL, "ops@plant.test")),
        ("mailto:ops@plant.test", Contact(Channel.EMAIL, "ops@plant.test")),
        (" MAILTO:first.x@sub.plant.test ", Contact(Channel.EMAIL, "first.x@sub.plant.test")),
        (
            "https://hooks.plant.test/T0/s",
            Contact(Channel.WEBHOOK, "https://hooks.plant.test/T0/s"),
        ),
        ("http://10.0.0.5:8080/alerts", Contact(Channel.WEBHOOK, "http://10.0.0.5:8080/alerts")),
    ],
)
def test_a_contact_is_an_email_address_or_a_webhook_url(value, expected):
    assert parse_contact(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ops", "is not an email address"),
        ("ops@", "is not an email address"),
        ("ops @plant.test", "is not an email address"),
        ("ftp://files.plant.test/x", "must be an http:// or https:// URL"),
        ("https://", "has no host"),
        ("", "is not an email address or webhook URL"),
        (None, "is not an email address or webhook URL"),
    ],
)
def test_a_bad_contact_is_refused_at_load_naming_the_job_and_the_field(value, problem):
    with pytest.raises(JobDefinitionError, match=problem) as err:
        make_job("billing", contacts=["ok@plant.test", value])
    assert "job 'billing': contacts:" in str(err.value)


def test_logs_show_a_webhook_without_its_path_which_may_hold_a_secret():
    assert (
        parse_contact("https://hooks.plant.test/T0/B1/secret").shown
        == "https://hooks.plant.test/..."
    )
    assert parse_contact("https://hooks.plant.test").shown == "https://hooks.plant.test"
    assert parse_contact("https://u:pw@hooks.plant.test:8443?t=1").shown == (
        "https://hooks.plant.test:8443/..."
    )
    assert parse_contact("mailto:ops@plant.test").shown == "ops@plant.test"


def test_contacts_hear_of_failures_skips_and_sla_misses_unless_the_job_says_otherwise():
    plain = make_job("plain", contacts=["ops@plant.test", "ops@plant.test"])
    assert plain.contacts == ("ops@plant.test",)
    assert plain.notify_on == ("failure", "skipped", "sla_miss")
    chatty = make_job("chatty", contacts=["ops@plant.test"], notify_on=["success", "failure"])
    assert chatty.notify_on == ("success", "failure")
    assert chatty.summary()["notify_on"] == ["success", "failure"]
    with pytest.raises(JobDefinitionError, match=r"job 'chatty': notify_on: unknown event 'fail'"):
        make_job("chatty", notify_on=["fail"])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("45m", 2700),
        ("1h30m", 5400),
        ("2d", 172800),
        ("90s", 90),
        ("1.5h", 5400),
        (600, 600),
        (timedelta(minutes=5), 300),
    ],
)
def test_an_sla_is_a_duration_after_the_run_was_queued(value, seconds):
    job = make_job("billing", sla=value)
    assert job.sla == timedelta(seconds=seconds)
    assert job.summary()["sla_s"] == seconds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("45 minutes", "is not a duration"),
        ("m45", "is not a duration"),
        ("0m", "longer than zero"),
        (-5, "longer than zero"),
        ([45], "is not a duration"),
    ],
)
def test_a_bad_sla_is_refused_naming_the_job_and_the_field(value, problem):
    with pytest.raises(JobDefinitionError, match=f"job 'billing': sla: .*{problem}"):
        make_job("billing", sla=value)
    assert parse_duration(None) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("smtp_port = 0", "key 'smtp_port' must be 1..65535"),
        ("timeout_s = 0", "key 'timeout_s' must be positive"),
        ("smtp_from = 'nobody'", "key 'smtp_from' must be an email address"),
        ("base_url = 'api.plant.test'", "key 'base_url' must start with http"),
        ("max_attempts = 0", "'max_attempts' and 'workers' must be at least 1"),
        ("smtp_starttls = 'yes'", "notify.smtp_starttls.*must be bool"),
        ("smtp_hots = 'mail'", "did you mean 'smtp_host'"),
    ],
)
def test_a_bad_notify_setting_names_the_key_and_the_file(tmp_path, text, problem):
    path = tmp_path / "edgebatch.toml"
    path.write_text(f"[notify]\n{text}\n")
    with pytest.raises(ConfigError, match=problem) as err:
        load_settings(path, environ={})
    assert str(path) in str(err.value)


def test_notify_settings_come_from_the_file_and_secrets_from_the_environment(tmp_path):
    path = tmp_path / "edgebatch.toml"
    path.write_text(
        "[notify]\nsmtp_host = 'mail.plant.test'\nsmtp_port = 587\nsmtp_starttls = true\n"
    )
    settings = load_settings(path, environ={"EDGEBATCH_NOTIFY_SMTP_PASSWORD": "s3cret"})
    notify = settings.notify
    assert (notify.smtp_host, notify.smtp_port, notify.smtp_starttls) == (
        "mail.plant.test",
        587,
        True,
    )
    assert notify.smtp_password == "s3cret"
