import re
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


def test_the_pages_sip_websocket_is_the_daemons_own_relay_under_web_url() -> None:
    ari = {"HOTLINE_ARI_URL": "http://hotline:pw@127.0.0.1:8088"}
    assert load_settings(environ=ari).sip_websocket_url == "ws://127.0.0.1:8089/ws"
    public = load_settings(environ={**ari, "HOTLINE_WEB_LISTEN": "10.0.0.5:8089",
                                    "HOTLINE_WEB_URL": "https://video.example.ru/"})
    assert public.sip_websocket_url == "wss://video.example.ru/ws"
    assert public.asterisk_ws_url == "ws://127.0.0.1:8088/ws"  # the relay's upstream, on loopback
    own = load_settings(environ={**ari, "HOTLINE_SIP_WS_URL": "wss://sip.example.ru/ws"})
    assert own.sip_websocket_url == "wss://sip.example.ru/ws"


@pytest.mark.parametrize("listen", ["0.0.0.0:8089", "10.0.0.5:8089", "[::]:8089", "video.example.ru:8089"])
@pytest.mark.parametrize("url", ["", "http://video.example.ru"])
def test_pages_beyond_loopback_need_an_https_web_url(listen: str, url: str) -> None:
    with pytest.raises(ConfigError, match=r"serves the pages beyond this machine: set web_url to the https://"):
        load_settings(environ={"HOTLINE_WEB_LISTEN": listen, "HOTLINE_WEB_URL": url})


@pytest.mark.parametrize("listen", ["127.0.0.1:8089", "127.0.0.2:9000", "localhost:8089", "[::1]:8089"])
def test_pages_on_loopback_need_no_web_url(listen: str) -> None:
    assert load_settings(environ={"HOTLINE_WEB_LISTEN": listen}).web_address is not None


@pytest.mark.parametrize(("name", "value", "says"), [
    ("SIP_WS_PER_CLIENT", "0", "sip_ws_per_client='0' must be WebSockets from 1"),
    ("SIP_WS_TOTAL", "many", "sip_ws_total='many' must be WebSockets"),
    ("SIP_WS_SILENT", "0", "sip_ws_silent='0' must be seconds from 1 to 3600"),
    ("SWITCH_LINKS_PER_CASE", "0", "switch_links_per_case='0' must be links from 1 to 100"),
    ("SWITCH_LINK_COOLDOWN", "5", "switch_link_cooldown='5' must be seconds from 10"),
    ("WEB_TRUSTED_PROXIES", "127.0.0.1,nginx", "web_trusted_proxies: 'nginx' is not an IP address"),
])
def test_guard_settings_out_of_range_are_clear_errors(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings(environ={f"HOTLINE_{name}": value})


def test_guard_settings_defaults() -> None:
    settings = load_settings(environ={})
    limits = settings.sip_ws_limits
    assert (limits.per_client, limits.new_per_minute, limits.total, limits.silent_s) == (16, 30, 250, 30)
    assert (settings.switch_link_cooldown_s, settings.switch_links_per_case_n) == (60, 3)
    assert settings.trusted_proxies == frozenset({"127.0.0.1", "::1"})
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


def test_web_rejoin_grace_is_60_s_by_default_0_turns_it_off_and_a_bad_value_is_named() -> None:
    assert load_settings(environ={}, config_file=None).web_rejoin_grace_s == 60
    assert load_settings(environ={"HOTLINE_WEB_REJOIN_GRACE": "0"}, config_file=None).web_rejoin_grace_s == 0
    for bad in ("-1", "3601", "a minute"):
        with pytest.raises(ConfigError, match="web_rejoin_grace"):
            load_settings(environ={"HOTLINE_WEB_REJOIN_GRACE": bad}, config_file=None)
