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


# Settings that take one of a few values: (name, default, another accepted value, a refused value,
# what the refusal lists).
CHOICE_SETTINGS = [
    ("ari_channel_subscription", "per_call", "all", "each", "per_call, all"),
    ("event_loop", "uvloop", "asyncio", "trio", "uvloop, asyncio"),
    ("synchronous_commit", "off", "on", "maybe", "off, local, remote_write, on"),
]


@pytest.mark.parametrize(("name", "default", "other", "refused", "listed"), CHOICE_SETTINGS)
def test_a_choice_setting_has_its_default_and_takes_another_value(
        name: str, default: str, other: str, refused: str, listed: str) -> None:
    assert getattr(load_settings(environ={}, config_file=None), name) == default
    env = {f"HOTLINE_{name.upper()}": other}
    assert getattr(load_settings(environ=env, config_file=None), name) == other


@pytest.mark.parametrize(("name", "default", "other", "refused", "listed"), CHOICE_SETTINGS)
def test_an_unknown_value_of_a_choice_setting_is_refused_by_name(
        name: str, default: str, other: str, refused: str, listed: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}='{refused}'.*{listed}"):
        load_settings(environ={f"HOTLINE_{name.upper()}": refused}, config_file=None)


def test_a_supervisor_token_is_taken_from_the_environment_and_never_shown_in_the_settings() -> None:
    settings = load_settings(environ={"HOTLINE_SUPERVISOR_TOKEN": "wallboard-0123456789abcdef"})
    assert settings.supervisor_token == "wallboard-0123456789abcdef"
    assert "wallboard-0123456789abcdef" not in repr(settings)


@pytest.mark.parametrize("token", ["short", "x" * 15, "wallboard 0123456789abcdef",
                                   "wallboard\n0123456789abcdef"])
def test_a_supervisor_token_that_is_short_or_has_blanks_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ConfigError, match="supervisor_token must be at least 16 characters") as info:
        load_settings(environ={"HOTLINE_SUPERVISOR_TOKEN": token})
    assert token not in str(info.value)
