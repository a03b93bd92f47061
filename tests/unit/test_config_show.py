"""`hotline config show` and `config example`: every setting with its source, secrets masked,
and an example file that lists every setting with its default (checked, so it cannot rot)."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import main
from hotline.config import Settings, default_of, effective, load_settings, mask

EXAMPLE = resources.files("hotline").joinpath("config_example.toml").read_text(encoding="utf-8")
SETTING_LINE = re.compile(r"^# ([a-z_]+) = (\".*\")$", re.M)


def example_settings() -> dict[str, str]:
    found = SETTING_LINE.findall(EXAMPLE)
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), "a setting listed twice"
    return {name: tomllib.loads(f"v = {value}")["v"] for name, value in found}


def test_the_example_lists_every_setting_and_nothing_else() -> None:
    assert set(example_settings()) == {f.name for f in fields(Settings)}


def test_the_example_shows_each_default_or_an_example_for_a_setting_that_has_none() -> None:
    for name, value in example_settings().items():
        default = default_of(name)
        if default and name != "node":  # node's default is this machine's host name
            assert value == default, f"{name}: the example says {value!r}, the default is {default!r}"


def test_the_example_uncommented_is_a_valid_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text(SETTING_LINE.sub(r"\1 = \2", EXAMPLE).replace('node = ""', 'node = "n1"'))
    settings = load_settings(environ={}, config_file=path)
    assert settings.web_url == "https://video.example.org" and settings.ari.user == "hotline"


def test_each_setting_comes_with_its_source(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text('ari_app = "from-file"\nlog_format = "json"\n')
    shown = {e.name: e for e in effective({"ari_app": "from-option", "dsn": None},
                                          environ={"HOTLINE_LOG_FORMAT": "text",
                                                   "HOTLINE_SPOOL_DIR": "/var/lib/hotline/spool"},
                                          config_file=path)}
    assert list(shown) == [f.name for f in fields(Settings)]
    assert (shown["ari_app"].value, shown["ari_app"].source) == ("from-option", "option --ari-app")
    assert (shown["log_format"].value, shown["log_format"].source) == ("text",
                                                                      "environment HOTLINE_LOG_FORMAT")
    assert shown["spool_dir"].source == "environment HOTLINE_SPOOL_DIR"
    assert shown["switch_key"].source == "default"
    assert (shown["switch_key"].value, shown["dsn"].source) == ("*", "default")


def test_a_value_from_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text('[hotline]\nweb_listen = "127.0.0.1:9000"\n')
    [shown] = [e for e in effective(environ={}, config_file=path) if e.name == "web_listen"]
    assert (shown.value, shown.source) == ("127.0.0.1:9000", f"file {path}")


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("dsn", "postgresql://hotline:s3cret@db:5432/hotline", "postgresql://hotline:***@db:5432/hotline"),
    ("dsn", "host=db dbname=hotline password=s3cret", "host=db dbname=hotline password=***"),
    ("dsn", "postgresql://hotline@db/hotline", "postgresql://hotline@db/hotline"),
    ("ami_url", "ami://hotline:p@ss@127.0.0.1:5038", "ami://hotline:***@127.0.0.1:5038"),
    ("ari_url", "http://hotline:pw@127.0.0.1:8088", "http://hotline:***@127.0.0.1:8088"),
    ("switch_link_webhook", "https://u:tok@crm.example.org/x", "https://u:***@crm.example.org/x"),
    ("supervisor_token", "0123456789abcdef0123", "***"),
    ("supervisor_token", "", ""),
    ("web_url", "https://video.example.org", "https://video.example.org"),
])
def test_secrets_are_masked(name: str, value: str, shown: str) -> None:
    assert mask(name, value) == shown


def test_config_show_prints_every_setting_masked_with_its_source() -> None:
    env = {"HOTLINE_DSN": "postgresql://hotline:s3cret@db/hotline", "HOTLINE_CONFIG": "",
           "HOTLINE_SUPERVISOR_TOKEN": "0123456789abcdef0123"}
    result = CliRunner().invoke(main, ["--ari-app", "hl", "config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "0123456789abcdef" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == len(fields(Settings))
    assert re.fullmatch(r'dsn +"postgresql://hotline:\*\*\*@db/hotline" +\(environment HOTLINE_DSN\)',
                        lines[0])
    assert re.search(r'^ari_app +"hl" +\(option --ari-app\)$', result.output, re.M)
    as_json = CliRunner().invoke(main, ["config", "show", "--format", "json"], env=env)
    rows = json.loads(as_json.output)
    assert rows[0] == {"name": "dsn", "value": "postgresql://hotline:***@db/hotline",
                       "source": "environment HOTLINE_DSN"}


def test_config_show_lists_the_settings_then_says_which_one_is_wrong() -> None:
    result = CliRunner().invoke(main, ["config", "show"],
                                env={"HOTLINE_EVENT_LOOP": "tokio", "HOTLINE_CONFIG": ""})
    assert result.exit_code == 1
    assert re.search(r'^event_loop +"tokio" +\(environment HOTLINE_EVENT_LOOP\)$', result.output, re.M)
    assert result.output.splitlines()[-1] == "Error: event_loop='tokio' must be one of uvloop, asyncio"


def test_config_example_prints_the_shipped_example() -> None:
    result = CliRunner().invoke(main, ["config", "example"])
    assert result.exit_code == 0 and result.output == EXAMPLE


@pytest.mark.parametrize(("args", "env_level", "level"), [
    ([], None, logging.INFO), ([], "WARNING", logging.WARNING), ([], "ERROR", logging.ERROR),
    (["-v"], "ERROR", logging.INFO), (["-vv"], "WARNING", logging.DEBUG),
])
def test_log_level_sets_what_the_daemon_logs_unless_v_says_otherwise(
        monkeypatch: pytest.MonkeyPatch, args: list[str], env_level: str | None, level: int) -> None:
    seen: list[int] = []
    monkeypatch.setattr("hotline.daemon.run_daemon", lambda _: seen.append(logging.getLogger().level))
    root = logging.getLogger()
    before = root.level
    try:
        env = {"HOTLINE_CONFIG": "", "HOTLINE_LOG_LEVEL": env_level or ""}
        result = CliRunner().invoke(main, [*args, "run"], env=env)
    finally:
        root.setLevel(before)
    assert result.exit_code == 0, result.output
    assert seen == [level]


def test_an_unknown_log_level_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(main, ["config", "show"],
                                env={"HOTLINE_LOG_LEVEL": "LOUD", "HOTLINE_CONFIG": ""})
    assert result.output.splitlines()[-1] == ("Error: log_level='LOUD' must be one of DEBUG, INFO, WARNING, "
                                              "ERROR")
