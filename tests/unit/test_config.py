from pathlib import Path

import pytest

from hotline.config import load_settings
from hotline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotline.toml"
    path.write_text(text)
    return path


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(environ={}, config_file=None)
    assert settings.ari_app == "hotline"
    assert settings.dsn == ""


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'ari_app = "from-file"\ndsn = "postgresql://file/db"\n')
    settings = load_settings(environ={"HOTLINE_DSN": "postgresql://env/db"}, config_file=path)
    assert settings.ari_app == "from-file"
    assert settings.dsn == "postgresql://env/db"


def test_cli_option_overrides_environment(tmp_path: Path) -> None:
    settings = load_settings({"ari_app": "cli", "dsn": None},
                             environ={"HOTLINE_ARI_APP": "env", "HOTLINE_DSN": "postgresql://env/db"})
    assert settings.ari_app == "cli"
    assert settings.dsn == "postgresql://env/db"  # a CLI option left unset does not erase it


def test_hotline_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[hotline]\nnode = "node-7"\n')
    settings = load_settings(environ={"HOTLINE_CONFIG": str(path)})
    assert settings.node == "node-7"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(environ={"HOTLINE_CONFIG": str(tmp_path / "nope.toml")})


def test_invalid_toml_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(environ={}, config_file=write(tmp_path, "dsn = \n"))


def test_unknown_setting_in_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting.*colour"):
        load_settings(environ={}, config_file=write(tmp_path, 'colour = "red"\n'))


def test_ami_url_is_parsed_into_host_port_and_credentials() -> None:
    settings = load_settings(environ={"HOTLINE_AMI_URL": "ami://hot:s%40cret@10.0.0.5:5039"})
    ami = settings.ami
    assert (ami.host, ami.port, ami.user, ami.secret) == ("10.0.0.5", 5039, "hot", "s@cret")


def test_ari_url_with_wrong_scheme_names_the_setting_and_hides_the_secret() -> None:
    settings = load_settings(environ={"HOTLINE_ARI_URL": "ami://u:topsecret@h:8088"})
    with pytest.raises(ConfigError) as info:
        _ = settings.ari
    assert "ari_url" in str(info.value) and "topsecret" not in str(info.value)


def test_url_without_credentials_is_refused() -> None:
    settings = load_settings(environ={"HOTLINE_AMI_URL": "ami://127.0.0.1:5038"})
    with pytest.raises(ConfigError, match="user:secret"):
        _ = settings.ami


def test_require_names_the_missing_variable() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ConfigError, match="HOTLINE_DSN"):
        settings.require("dsn")


def test_ari_channel_subscription_is_per_call_unless_set_to_all(tmp_path: Path) -> None:
    assert load_settings(environ={}, config_file=None).ari_channel_subscription == "per_call"
    env = {"HOTLINE_ARI_CHANNEL_SUBSCRIPTION": "all"}
    assert load_settings(environ=env, config_file=None).ari_channel_subscription == "all"


def test_an_unknown_ari_channel_subscription_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="ari_channel_subscription='each'.*per_call, all"):
        load_settings(environ={"HOTLINE_ARI_CHANNEL_SUBSCRIPTION": "each"}, config_file=None)


def test_the_event_loop_is_uvloop_unless_set_to_asyncio() -> None:
    assert load_settings(environ={}, config_file=None).event_loop == "uvloop"
    env = {"HOTLINE_EVENT_LOOP": "asyncio"}
    assert load_settings(environ=env, config_file=None).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="event_loop='trio'.*uvloop, asyncio"):
        load_settings(environ={"HOTLINE_EVENT_LOOP": "trio"}, config_file=None)


def test_the_daemon_commits_without_waiting_for_the_flush_unless_set() -> None:
    assert load_settings(environ={}, config_file=None).synchronous_commit == "off"
    env = {"HOTLINE_SYNCHRONOUS_COMMIT": "on"}
    assert load_settings(environ=env, config_file=None).synchronous_commit == "on"


def test_an_unknown_synchronous_commit_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="synchronous_commit='maybe'.*off, local, remote_write, on"):
        load_settings(environ={"HOTLINE_SYNCHRONOUS_COMMIT": "maybe"}, config_file=None)
