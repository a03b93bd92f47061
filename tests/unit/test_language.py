"""Language: parsing and validating languages and `language:` keys, the IVR switching a caller's
language, which prompts each language needs, and the lookup of Asterisk's sound files."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from hotline.asterisk.sounds import SoundsDir
from hotline.cli.apply import check_prompts
from hotline.cli.doctor import prompts_found
from hotline.config import Settings
from hotline.engine.facts import KeyPressed, LanguageSet
from hotline.engine.ivr import run_menu
from hotline.errors import HotlineError, PromptsMissing, ProvisionError
from hotline.provision import export, parse, prompts
from hotline.provision.model import Hotline, Menu, MenuOption, Number, Provisioning, Queue, Target
from hotline.provision.validate import validate
from hotline.store.hops import Hop

from support.engine import Engine, dtmf

DOC = """
[queues.support]
announce_period = 30

[queues.english]

[menus.choose]
prompt = "hotline/choose"
[menus.choose.options]
"1" = "queue:support"
"9" = {action = "language:en", prompt = "hotline/english-chosen"}
"8" = {action = "language:en_GB", then = "queue:english", priority = 3, prompt = "hotline/british"}

[hotlines.moscow]
entry = "menu:choose"
language = "ru"
closed_prompt = "hotline/closed"

[hotlines.plain]
entry = "queue:english"

[numbers."+74951234567"]
hotline = "moscow"

[numbers."+74951234568"]
hotline = "plain"
language = "en"
"""


def prov_of(text: str = DOC) -> Provisioning:
    prov = parse.provisioning(tomllib.loads(text))
    validate(prov)
    return prov


def test_a_hotline_and_a_number_take_a_language_and_keys_choose_one() -> None:
    prov = prov_of()
    assert prov.hotlines["moscow"].language == "ru"
    assert prov.hotlines["plain"].language is None
    assert prov.numbers["+74951234568"].language == "en"
    assert prov.numbers["+74951234567"].language is None  # its hotline's
    keys = {o.digit: o for o in prov.menus["choose"].options}
    assert keys["9"].target == Target("language", "en") and keys["9"].then is None
    assert keys["8"].target == Target("language", "en_GB") and keys["8"].then == Target("queue", "english")
    assert keys["8"].leads_to == Target("queue", "english") and keys["9"].leads_to == Target("repeat")


@pytest.mark.parametrize("value", ["russian", "RU", "ru-RU", "r", "en_gb", "../en", ""])
def test_a_language_that_is_no_sounds_directory_is_refused_by_name(value: str) -> None:
    with pytest.raises(ProvisionError, match=r"hotlines\.moscow\.language: .* is not a language of "
                                             r"Asterisk's sounds \(.*'en', 'ru' or 'en_GB'\)"):
        parse.language("hotlines.moscow.language", value)


def test_none_unsets_a_language() -> None:
    assert parse.hotline("h", {"entry": "queue:q", "language": "none"}).language is None
    assert parse.number("+74951234567", {"hotline": "h", "language": ""}).language is None


@pytest.mark.parametrize("spec, says", [
    ("language", "needs the language the caller chooses: 'language:LANG'"),
    ("language:English", "is not a language of Asterisk's sounds"),
    ({"action": "queue:support", "then": "menu:choose"}, "only a 'language:LANG' key has a next step"),
    ({"action": "language:en", "priority": 2}, "leads to the same menu"),
    ({"action": "language:en", "then": "repeat"}, "is not one of menu, queue, hotline"),
])
def test_bad_language_keys_are_refused_with_the_reason(spec: object, says: str) -> None:
    with pytest.raises(ProvisionError, match=re.escape(says)):
        parse.option("menus.m.options", "9", spec)


def test_a_language_key_leading_nowhere_that_exists_is_refused() -> None:
    broken = DOC.replace('then = "queue:english"', 'then = "menu:nowhere"')
    with pytest.raises(ProvisionError,
                       match=r"menus\.choose\.options\.8\.then: 'menu:nowhere' does not exist"):
        prov_of(broken)


def test_a_menu_whose_only_keys_switch_language_never_leads_out_and_is_refused() -> None:
    only = DOC.replace('"1" = "queue:support"\n', "").replace(', then = "queue:english", priority = 3', "")
    assert '"8" = {action = "language:en_GB", prompt' in only
    with pytest.raises(ProvisionError, match=r"menus\.choose\.options: .* never leads out of the menus"):
        prov_of(only)


def test_a_breakout_menu_with_a_language_key_is_refused() -> None:
    text = DOC.replace("[queues.english]", '[queues.english]\nbreakout_menu = "choose"')
    with pytest.raises(ProvisionError, match=r"queues\.english\.breakout_menu: key '8' of menu 'choose' "
                                             r"is 'language:en_GB', which a caller waiting in a queue "
                                             r"cannot use"):
        prov_of(text)


def test_export_writes_the_languages_back_as_provision_reads_them() -> None:
    prov = prov_of()
    again = parse.provisioning(tomllib.loads(export.to_toml(prov)))
    assert again == prov
    assert 'language = "ru"' in export.to_toml(prov)


# -- the IVR ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Caller:
    """A MenuIO pressing `keys` after each prompt, remembering what it heard in which language."""

    keys: list[str | None]
    channel_id: str = "c1"
    language: str = "ru"
    heard: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    recorded: list[str] = dataclasses.field(default_factory=list)

    async def play(self, media: str, *, stop_on_digit: bool = False) -> str | None:
        self.heard.append((media, self.language))
        return None

    async def digit(self, timeout: float) -> str | None:
        return self.keys.pop(0) if self.keys else None

    async def choose_language(self, language: str, digit: str) -> None:
        self.language = language
        self.recorded.append(f"{digit}:{language}")

    async def pressed(self, digit: str) -> None:
        self.recorded.append(digit)


async def test_a_language_key_replays_the_menu_in_the_new_language_then_the_caller_goes_on() -> None:
    prov = prov_of()
    caller = Caller(["9", "1"])
    target = await run_menu(caller, prov.menus, Target("menu", "choose"), caller.pressed)
    assert target == Target("queue", "support")
    assert caller.recorded == ["9:en", "1"]
    assert caller.heard == [("sound:hotline/choose", "ru"), ("sound:hotline/english-chosen", "en"),
                            ("sound:hotline/choose", "en")]


async def test_a_language_key_with_a_next_step_goes_there_in_the_new_language() -> None:
    prov = prov_of()
    caller = Caller(["8"])
    chose: list[MenuOption] = []
    target = await run_menu(caller, prov.menus, Target("menu", "choose"), caller.pressed, chose.append)
    assert target == Target("queue", "english")
    assert caller.language == "en_GB" and caller.recorded == ["8:en_GB"]
    assert [o.priority for o in chose] == [3]


def test_a_language_key_is_recorded_with_its_language_and_an_entry_language_on_its_own() -> None:
    hop = Hop(7, 3, 1, "n", "c1", "pstn", "", None, "", None, None, None, None)  # type: ignore[arg-type]
    assert KeyPressed("9", "en").record(hop) == {"k": "digit", "hop": 7, "digit": "9", "language": "en"}
    assert KeyPressed("1").record(hop) == {"k": "digit", "hop": 7, "digit": "1"}
    assert LanguageSet("ru").record(hop) == {"k": "language", "hop": 7, "language": "ru"}


# -- which prompts each language needs -----------------------------------------------------------------

def test_each_language_needs_the_prompts_its_callers_can_reach() -> None:
    needed = prompts.needed(prov_of())
    assert sorted(needed) == ["en", "en_GB", "ru"]
    ru = needed["ru"]
    assert ru["hotline/closed"] == "hotlines.moscow" and ru["hotline/choose"] == "menus.choose"
    assert "pm-invalid-option" in ru and "vm-goodbye" in ru  # the menu's built-in prompts
    assert {"queue-thereare", "queue-callswaiting", "queue-youarenext", "digits/5"} <= set(ru)  # support
    assert "hotline/english-chosen" not in ru  # a language key's prompt plays in its language
    assert needed["en"]["hotline/english-chosen"] == "menus.choose.options.9"
    assert "hotline/choose" in needed["en"]  # the menu again, in English
    assert "hotline/closed" not in needed["en"]  # the number of `plain` enters a hotline without it
    # on to a queue without announcements: the key's own prompt alone, not the menu again
    assert needed["en_GB"] == {"hotline/british": "menus.choose.options.8"}


def test_callers_of_no_language_need_nothing_checked() -> None:
    text = DOC.replace('language = "ru"\n', "").replace('language = "en"\n', "")
    text = text.replace('"9" = {action = "language:en", prompt = "hotline/english-chosen"}\n', "")
    text = text.replace('"8" = {action = "language:en_GB", then = "queue:english", priority = 3, '
                        'prompt = "hotline/british"}\n', "")
    assert prompts.needed(prov_of(text)) == {}
    assert prompts.languages_in_use(prov_of()) == ["en", "en_GB", "ru"]


def test_the_engine_names_no_sound_of_its_own_outside_the_table() -> None:
    """A prompt added to the engine must be in hotline.engine.built_in_prompts, so that it is
    checked in every language and named as each language names it: no `sound:NAME` literal."""
    engine = Path(prompts.__file__).resolve().parents[1] / "engine"
    spelled = {f"{path.name}: {m}" for path in engine.rglob("*.py") if path.name != "built_in_prompts.py"
               for m in re.findall(r'"sound:([a-z][a-z0-9/_-]*)"', path.read_text(encoding="utf-8"))}
    assert spelled == set()


# -- the sound files ------------------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A chroot like the lab's: sounds/en -> /etc/alternatives/prompt-en -> .../en_US_f_Allison,
    both absolute inside the root."""
    sounds = tmp_path / "usr/share/asterisk/sounds"
    (sounds / "en_US_f_Allison/digits").mkdir(parents=True)
    (sounds / "ru/hotline").mkdir(parents=True)
    (tmp_path / "etc/alternatives").mkdir(parents=True)
    (tmp_path / "etc/alternatives/prompt-en").symlink_to("/usr/share/asterisk/sounds/en_US_f_Allison")
    (sounds / "en").symlink_to("/etc/alternatives/prompt-en")
    for name in ("en_US_f_Allison/beep.gsm", "en_US_f_Allison/digits/1.ulaw", "ru/hotline/choose.wav",
                 "ru/notes.txt"):
        (sounds / name).write_bytes(b"")
    return tmp_path


def test_a_sound_counts_in_any_asterisk_format_through_the_roots_own_symlinks(root: Path) -> None:
    sounds = SoundsDir("/usr/share/asterisk/sounds", str(root))
    assert sounds.exists() and sounds.here() == root / "usr/share/asterisk/sounds"
    assert sounds.has("en", "beep") and sounds.has("en", "digits/1") and sounds.has("ru", "hotline/choose")
    assert not sounds.has("ru", "beep") and not sounds.has("ru", "notes")  # .txt is no sound
    assert sounds.languages() == ["en", "en_US_f_Allison", "ru"]
    missing = sounds.missing({"ru": {"hotline/choose": "menus.choose", "hotline/closed": "hotlines.moscow"}})
    assert [m.line() for m in missing] == ["hotline/closed (ru), used by hotlines.moscow"]


def test_apply_refuses_a_missing_prompt_naming_the_file_and_its_language(root: Path) -> None:
    settings = Settings(asterisk_root=str(root))
    with pytest.raises(PromptsMissing) as refused:
        check_prompts(prov_of(), settings)
    said = str(refused.value)
    assert "hotline/closed (ru), used by hotlines.moscow" in said
    assert "hotline/english-chosen (en), used by menus.choose.options.9" in said
    assert "(en_GB)" in said and "nothing written" in said
    assert "hotline/choose (ru)" not in said  # it is there


def test_apply_warns_when_it_cannot_see_the_sounds(tmp_path: Path) -> None:
    warnings = check_prompts(prov_of(), Settings(asterisk_root=str(tmp_path)))
    assert len(warnings) == 1 and "were not checked" in warnings[0] and "en, en_GB, ru" in warnings[0]


def test_apply_checks_nothing_when_no_language_is_set(tmp_path: Path) -> None:
    nothing = Provisioning(menus={"m": Menu("m", "x")})
    assert check_prompts(nothing, Settings(asterisk_root=str(tmp_path))) == ()


# -- the engine ----------------------------------------------------------------------------------------

def language_centre(number_language: str | None = None) -> Provisioning:
    return Provisioning(
        queues={"support": Queue("support")},
        menus={"choose": Menu("choose", "hello", timeout=5, options=(
            MenuOption("9", Target("language", "en")), MenuOption("1", Target("hangup"))))},
        hotlines={"city": Hotline("city", entry=Target("menu", "choose"), language="ru")},
        numbers={"+74951234567": Number("+74951234567", "city", language=number_language)})


async def test_the_callers_language_is_set_before_any_prompt_and_recorded_on_the_hop() -> None:
    engine = Engine(language_centre())
    engine.ari.hold_playbacks = True
    engine.call_in("c1", "84951234567")
    await engine.ari.wait_for("play")
    names = engine.ari.names()
    assert names.index("set_channel_variable") < names.index("play")
    assert engine.ari.variables["c1"] == {"CHANNEL(language)": "ru"}
    engine.ari.send(dtmf("c1", "9"))  # English: the menu again, in English
    await engine.ari.wait_for("play", 2)
    assert engine.ari.variables["c1"] == {"CHANNEL(language)": "en"}
    engine.ari.send(dtmf("c1", "1"))
    await engine.ended()
    recorded = [(r["k"], r.get("digit"), r.get("language")) for r in engine.records.records
                if r["k"] in ("language", "digit")]
    assert recorded == [("language", None, "ru"), ("digit", "9", "en"), ("digit", "1", None)]


async def test_a_numbers_own_language_wins_over_its_hotlines() -> None:
    engine = Engine(language_centre("en_GB"))
    engine.call_in("c1", "84951234567")
    await engine.ari.wait_for("play")
    assert engine.ari.variables["c1"] == {"CHANNEL(language)": "en_GB"}
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


async def test_a_caller_of_no_language_keeps_asterisks_default() -> None:
    prov = language_centre()
    prov.hotlines["city"] = dataclasses.replace(prov.hotlines["city"], language=None)
    engine = Engine(prov)
    engine.call_in("c1", "84951234567")
    await engine.ari.wait_for("play")
    assert "set_channel_variable" not in engine.ari.names()
    engine.ari.caller_hangs_up("c1")
    await engine.ended()


def test_doctor_lists_the_missing_prompts_and_counts_the_found(root: Path) -> None:
    sounds = SoundsDir("/usr/share/asterisk/sounds", str(root))
    assert prompts_found({"ru": {"hotline/choose": "menus.choose"}}, sounds) == "1 prompt(s) in ru"
    with pytest.raises(HotlineError, match=r"hotline/closed \(ru\), used by hotlines\.moscow"):
        prompts_found({"ru": {"hotline/closed": "hotlines.moscow"}}, sounds)
    assert prompts_found({}, sounds).startswith("no language set")
