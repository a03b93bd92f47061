"""Language through the real lab: a hotline set to Russian has its callers' channel in `ru` and its
position announcements played from sounds/ru; a caller pressing a `language:en` key goes on in
English; `hotline apply` refuses a prompt missing in a language callers hear, and accepts a Russian
queue offering callbacks (its prompts named as the Russian sounds name them); every built-in prompt
and every sound of the example exists in the lab's sounds."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import psycopg
import pytest

from hotline.asterisk.ari import AriClient
from hotline.asterisk.sounds import SoundsDir
from hotline.config import load_settings
from hotline.engine import built_in_prompts
from hotline.lab import Lab
from hotline.provision import parse, prompts
from hotline.provision.validate import validate

from support import sipp
from support.checks import rows, wait_until
from support.cli import hotline_cli
from support.daemon import DaemonProcess
from support.provisioning import BASE

pytestmark = pytest.mark.lab

RUSSIAN_NUMBER = "84950003311"
CHOOSING_NUMBER = "84950003322"
# The Russian line's caller waits alone (no agents): "you are next" at 5 s, overflow at 7 s.
LANGUAGE = BASE + """
[queues.ru-line]
announce_period = 5
max_wait = 7

[menus.choose]
prompt = "beep"
timeout = 3
retries = 1

[menus.choose.options]
"9" = "language:en"
"1" = "hangup"

[hotlines.russian]
entry = "queue:ru-line"
language = "ru"

[hotlines.choosing]
entry = "menu:choose"
language = "ru"

[numbers."+74950003311"]
hotline = "russian"

[numbers."+74950003322"]
hotline = "choosing"
"""
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contact-centre.toml"
ASKING_NUMBER = "84950003333"
# A Russian caller of a queue offering callbacks: the announcement at 5 s offers it (Russian
# "you are next" takes 5 s, "to call back" 4 s), 5 cuts it
# short, 1 confirms the caller's own number as it is read back; the thanks, and Asterisk hangs up.
RUSSIAN_CALLBACKS = BASE + """
[queues.ru-callbacks]
announce_period = 5
announce_holdtime = true
callback_key = "5"

[hotlines.russian-callbacks]
entry = "queue:ru-callbacks"
language = "ru"

[numbers."+74950003333"]
hotline = "russian-callbacks"

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74950003333"
allow = ["+7916"]
"""
CUSTOMER = "+79165551234"


@pytest.fixture
def daemon(daemon: DaemonProcess) -> DaemonProcess:
    wait_until(lambda: "hotline running on node" in daemon.log(), what="daemon connected")
    return daemon


def channel_language(env: dict[str, str], channel_id: str) -> str:
    async def ask() -> str:
        client = AriClient(load_settings(environ=env).ari)
        try:
            return await client.channel_variable(channel_id, "CHANNEL(language)")
        finally:
            await client.close()
    return asyncio.run(ask())


def live_hop(db: psycopg.Connection, dialled: str) -> dict[str, object]:
    return wait_until(lambda: rows(db, "SELECT * FROM hops WHERE dialled = %s", dialled), what="hop")[0]


def asterisk_played(lab: Lab, start: int, channel_name: str) -> list[str]:
    """Asterisk's own lines for the files it played to the channel: "'queue-youarenext.gsm'
    (language 'ru')"."""
    with lab.log_paths()["asterisk"].open("rb") as fh:
        fh.seek(start)
        log = fh.read().decode(errors="replace")
    return [line.split("Playing ", 1)[1] for line in log.splitlines()
            if channel_name in line and "Playing '" in line]


@pytest.mark.provision(LANGUAGE)
def test_a_russian_hotlines_caller_hears_its_position_in_russian(
        daemon: DaemonProcess, lab: Lab, db: psycopg.Connection, daemon_env: dict[str, str]) -> None:
    start = lab.log_paths()["asterisk"].stat().st_size
    call = sipp.start_call(RUSSIAN_NUMBER)
    hop = live_hop(db, RUSSIAN_NUMBER)
    assert channel_language(daemon_env, str(hop["channel_id"])) == "ru"  # asked while the call is up
    assert sipp.finish(call).ok  # waited, heard its position, overflowed: BYE from Asterisk
    ended = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL AND dialled = %s",
                                    RUSSIAN_NUMBER), what="closed hop")[0]
    assert ended["language"] == "ru"
    played = asterisk_played(lab, start, str(hop["channel_name"]))
    assert "'queue-youarenext.gsm' (language 'ru')" in played, played
    assert all("(language 'ru')" in line for line in played), played
    sounds = Path(daemon_env["HOTLINE_ASTERISK_ROOT"]) / "usr/share/asterisk/sounds"
    assert (sounds / "ru/queue-youarenext.gsm").is_file()
    assert "language ru" in daemon.log()


@pytest.mark.provision(LANGUAGE)
def test_a_caller_choosing_english_goes_on_in_english_and_the_hop_says_so(
        daemon: DaemonProcess, lab: Lab, db: psycopg.Connection, daemon_env: dict[str, str]) -> None:
    start = lab.log_paths()["asterisk"].stat().st_size
    call = sipp.start_pressing_keys(CHOOSING_NUMBER, "9")  # then silent: the menu times out, goodbye
    hop = live_hop(db, CHOOSING_NUMBER)
    channel = str(hop["channel_id"])
    wait_until(lambda: rows(db, "SELECT 1 FROM hops WHERE id = %s AND language = 'en'", hop["id"]),
               what="the hop in English")
    assert channel_language(daemon_env, channel) == "en"
    assert sipp.finish(call).ok
    ended = wait_until(lambda: rows(db, "SELECT * FROM hops WHERE ended_at IS NOT NULL AND id = %s",
                                    hop["id"]), what="closed hop")[0]
    assert (ended["ivr_path"], ended["language"]) == ("9", "en")
    keys = rows(db, "SELECT data FROM contact_events WHERE kind = 'menu_key' AND hop_id = %s", hop["id"])
    assert [k["data"] for k in keys] == [{"key": "9", "path": "9", "language": "en"}]
    played = asterisk_played(lab, start, str(hop["channel_name"]))
    assert played[0] == "'beep.gsm' (language 'ru')", played  # the menu, before the key
    assert "'beep.gsm' (language 'en')" in played, played  # the menu again, in English
    assert played[-1] == "'vm-goodbye.gsm' (language 'en')", played
    assert "menu choose key 9: language en" in daemon.log()


def test_apply_refuses_a_prompt_missing_in_a_language_callers_hear(
        daemon_env: dict[str, str], rendered_files_removed_afterwards: Path, tmp_path: Path) -> None:
    (tmp_path / "language.toml").write_text(LANGUAGE)
    provisioned = hotline_cli(daemon_env, "provision", str(tmp_path / "language.toml"))
    assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
    applied = hotline_cli(daemon_env, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr  # every prompt is there in ru and en
    assert "not checked" not in applied.stderr, applied.stderr  # and they were checked
    changed = hotline_cli(daemon_env, "hotline", "set", "russian", "--closed-prompt",
                          "hotline/no-such-prompt")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    before = {p.name: p.read_bytes() for p in rendered_files_removed_afterwards.glob("*_hotline.conf")}
    refused = hotline_cli(daemon_env, "apply")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "hotline/no-such-prompt (ru), used by hotlines.russian" in refused.stderr, refused.stderr
    assert "nothing written" in refused.stderr and "Traceback" not in refused.stderr
    after = {p.name: p.read_bytes() for p in rendered_files_removed_afterwards.glob("*_hotline.conf")}
    assert after == before


def lab_sounds(env: dict[str, str]) -> SoundsDir:
    sounds = SoundsDir("/usr/share/asterisk/sounds", env["HOTLINE_ASTERISK_ROOT"])
    assert sounds.exists(), sounds.here()
    return sounds


def test_apply_accepts_a_russian_queue_offering_callbacks_and_every_built_in_prompt_exists(
        daemon_env: dict[str, str], rendered_files_removed_afterwards: Path, tmp_path: Path) -> None:
    sounds = lab_sounds(daemon_env)
    for language in ("en", "ru"):
        files = {built_in_prompts.file_in(p, language) for p in built_in_prompts.ALL}
        assert [f for f in sorted(files) if not sounds.has(language, f)] == [], language
    assert sounds.has("ru", "pls-try-call-later") and not sounds.has("ru", "please-try-call-later")
    offering = 'max_wait = 7\ncallback_key = "5"\nannounce_holdtime = true\n'
    text = LANGUAGE.replace("max_wait = 7\n", offering) + """
[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74950003311"
allow = ["+7495"]
"""
    (tmp_path / "callbacks.toml").write_text(text)
    provisioned = hotline_cli(daemon_env, "provision", str(tmp_path / "callbacks.toml"))
    assert provisioned.returncode == 0, provisioned.stdout + provisioned.stderr
    applied = hotline_cli(daemon_env, "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "not checked" not in applied.stderr, applied.stderr


def test_every_sound_the_example_names_exists_in_each_language_it_is_heard_in(
        lab_env: dict[str, str]) -> None:
    prov = parse.provisioning(tomllib.loads(EXAMPLE.read_text()))
    validate(prov)
    sounds = lab_sounds(lab_env)
    named = prompts.named(prov)
    assert named, "the example names no sound"
    for language in prompts.languages_in_use(prov) or ["en"]:  # none set: Asterisk's default, en
        missing = [f"{s} ({where})" for s, where in sorted(named.items())
                   if not sounds.has(language, built_in_prompts.file_in(s, language))]
        assert missing == [], language
    assert sounds.missing(prompts.needed(prov)) == []  # and the built-in ones of each language heard


@pytest.mark.provision(RUSSIAN_CALLBACKS)
def test_a_russian_caller_asks_a_callback_hearing_every_prompt_from_the_russian_sounds(
        daemon: DaemonProcess, lab: Lab, db: psycopg.Connection) -> None:
    start = lab.log_paths()["asterisk"].stat().st_size
    caller = sipp.start_pressing_keys(ASKING_NUMBER, "5", "1", first_ms=12500, gap_ms=2500, timeout_s=30,
                                      caller=CUSTOMER)
    hop = live_hop(db, ASKING_NUMBER)
    assert sipp.finish(caller).ok  # thanked, then hung up by Asterisk
    request = wait_until(lambda: rows(db, "SELECT * FROM callbacks"), what="callback request")[0]
    assert request["number"] == CUSTOMER and request["hop_id"] == hop["id"]
    played = asterisk_played(lab, start, str(hop["channel_name"]))
    for heard in ("queue-youarenext", "vm-tocallback", "vm-num-i-have", "auth-thankyou",
                  "vm-goodbye"):
        assert f"'{heard}.gsm' (language 'ru')" in played, (heard, played)
    assert all("(language 'ru')" in line for line in played), played
    with lab.log_paths()["asterisk"].open("rb") as fh:
        fh.seek(start)
        log = fh.read().decode(errors="replace")
    assert "does not exist" not in log and "Unable to open" not in log, log[-2000:]
