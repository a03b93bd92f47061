"""The pages' catalogues: the same keys and fields in every language, every key the templates
and scripts use present, and the language a page picks."""

from __future__ import annotations

import re
import string
from dataclasses import replace

import pytest

from hotline.engine.supervision import MODES as SUPERVISE_MODES
from hotline.provision.model import Hotline, Node, Number, Provisioning, Target
from hotline.store.switches import SwitchLeg
from hotline.web import i18n, said
from hotline.web.app import TEMPLATES_DIR, HotlinePage
from hotline.web.customer_pages import page_language_of, switch_look

STATIC_DIR = TEMPLATES_DIR.parent / "static"
TEMPLATE_KEY = re.compile(r"""\b_\(\s*["']([A-Za-z0-9_.-]+)["']""")
SCRIPT_KEY = re.compile(r"""\bT\(\s*["']([A-Za-z0-9_.-]+)["']""")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _used_keys() -> set[str]:
    used: set[str] = set()
    for path in TEMPLATES_DIR.glob("*.html"):
        used |= set(TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")))
    for path in STATIC_DIR.glob("*.js"):
        if not path.name.endswith(".min.js"):
            used |= set(SCRIPT_KEY.findall(path.read_text(encoding="utf-8")))
    return used


def test_the_pages_speak_english_and_russian() -> None:
    assert i18n.languages()[0] == "en"
    assert {"en", "ru"} <= set(i18n.languages())


@pytest.mark.parametrize("language", i18n.languages())
def test_every_language_has_every_text_with_the_same_fields(language: str) -> None:
    english = i18n.catalogue("en")
    texts = i18n.catalogue(language)
    assert sorted(set(english) - set(texts)) == [], f"missing in {language}.json"
    assert sorted(set(texts) - set(english)) == [], f"in {language}.json only"
    for key, template in texts.items():
        assert template.strip(), f"{language}.json: {key} is empty"
        assert _fields(template) == _fields(english[key]), f"{language}.json: {key} has other fields"


def test_every_key_the_pages_use_is_in_the_catalogues() -> None:
    missing = sorted(_used_keys() - set(i18n.catalogue("en")))
    assert missing == []


def test_a_text_fills_its_fields() -> None:
    assert i18n.text("en", "page.hotline") == "hotline"
    with pytest.raises(KeyError):
        i18n.catalogue("xx")


@pytest.mark.parametrize(("header", "expected"), [
    (None, []),
    ("", []),
    ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", ["ru", "en"]),
    ("en;q=0.5, ru", ["ru", "en"]),
    ("de, fr;q=0.9, *;q=0.1", ["de", "fr"]),
    ("ru;q=0, en", ["en"]),
    ("ru;q=abc, en", ["en"]),
    ("EN-gb", ["en"]),
])
def test_accept_language_is_read_by_its_weights(header: str | None, expected: list[str]) -> None:
    assert i18n.accepted_languages(header) == expected


@pytest.mark.parametrize(("hotline", "header", "expected"), [
    ("ru", "en-US,en", "ru"),         # the hotline's language first
    ("ru_RU", None, "ru"),
    ("de", "ru,en;q=0.5", "ru"),      # a hotline language without texts: the browser's
    (None, "de,ru;q=0.8,en;q=0.5", "ru"),
    (None, "de,fr", "en"),            # nothing in common: English
    (None, None, "en"),
])
def test_the_page_language(hotline: str | None, header: str | None, expected: str) -> None:
    assert i18n.page_language(hotline, header) == expected


def test_a_video_addresss_page_speaks_its_numbers_language_else_its_hotlines() -> None:
    hotline = Hotline("support", entry=Target("queue", "support"), language="ru")
    video = Number("video-support", "support", kind="video")
    assert page_language_of(video, hotline) == "ru"
    assert page_language_of(replace(video, language="en"), hotline) == "en"
    assert page_language_of(video, replace(hotline, language=None)) is None
    assert page_language_of(video, None) is None


SERVER_CODE = re.compile(r"""\b(?:said|refused|_refusal_json)\(\s*(?:[^,()]+,\s*)?["']([a-z0-9_]+)["']""")
SERVER_CODE_MAP = re.compile(r"""["']((?:transferred|consulting|transfer_cancelled|supervise_[a-z]+))["']""")


def _server_codes() -> set[str]:
    """Every code the server's modules name when they answer a page (hotline.web.said)."""
    codes: set[str] = set()
    for path in (TEMPLATES_DIR.parent).glob("*.py"):
        source = path.read_text(encoding="utf-8")
        codes |= set(SERVER_CODE.findall(source))
        if path.name == "backend.py":
            codes |= set(SERVER_CODE_MAP.findall(source)) | {f"supervise_{m}" for m in SUPERVISE_MODES}
    return codes


def test_every_code_the_server_sends_has_a_text_in_every_language() -> None:
    codes = _server_codes()
    assert {"wrong_login", "note_kept", "invite_self", "customer_calling", "link_retry"} <= codes
    for language in i18n.languages():
        missing = sorted(c for c in codes if said.PREFIX + c not in i18n.catalogue(language))
        assert missing == [], f"{language}.json lacks texts for {missing}"


def test_a_code_says_its_english_text_with_its_fields_and_an_unknown_code_fails_early() -> None:
    answer = said.said("note_kept", case=42)
    assert answer.json() == {"message": "Note kept on case 42", "code": "note_kept", "fields": {"case": 42}}
    assert i18n.text("ru", "said.note_kept", case=42) == "Заметка сохранена в обращении 42"
    refusal = said.refused(409, "invite_no_agent", agent="petrov")
    assert (refusal.status, refusal.message, refusal.code, refusal.fields) == (
        409, "There is no agent petrov", "invite_no_agent", {"agent": "petrov"})
    with pytest.raises(KeyError):
        said.said("no_such_code")


def test_a_switch_links_page_has_its_legs_hotlines_look_in_its_legs_language() -> None:
    hotline = Hotline("support", entry=Target("queue", "support"), language="en", page_title="Bank",
                      page_text="Hello", page_color="#123456")
    prov = Provisioning(hotlines={"support": hotline},
                        numbers={"+74950002299": Number("+74950002299", "support", language="de")})
    leg = SwitchLeg("support", "+74950002299", "ru")
    assert switch_look(leg, prov) == HotlinePage("Bank", "Hello", "", "#123456", "ru")
    assert switch_look(replace(leg, language=None), prov).language == "de"  # the number's
    assert switch_look(SwitchLeg("support", None, None), prov).language == "en"  # the hotline's
    assert switch_look(SwitchLeg("support", None, None, "b"), prov).node == ""  # one node: no steering
    with_nodes = replace(prov, nodes={"b": Node("b", "http://10.0.0.3:8088", "ami://10.0.0.3:5038",
                                                "sip:10.0.0.3")})
    assert switch_look(SwitchLeg("support", None, None, "b"), with_nodes).node == "b"
    assert switch_look(SwitchLeg("gone", None, "ru"), prov) == HotlinePage(language="ru")  # no look
