"""The table of the engine's own prompts: each language's file for each, as played and as checked."""

from __future__ import annotations

import tomllib

from hotline.engine import built_in_prompts as table
from hotline.engine.queueing.callback_offer import TRY_LATER
from hotline.provision import parse, prompts
from hotline.provision.model import Provisioning
from hotline.provision.validate import validate

RUSSIAN_CALLBACKS = """
[queues.support]
announce_period = 30
announce_holdtime = true
callback_key = "5"

[queues.english]
announce_period = 30
callback_key = "5"

[hotlines.moscow]
entry = "queue:support"
language = "ru"

[hotlines.london]
entry = "queue:english"
language = "en"

[numbers."+74951234567"]
hotline = "moscow"

[trunks.carrier]
endpoint = "sipp-carrier"
caller_id = "+74951234567"
allow = ["+7495"]
"""


def prov_of(text: str) -> Provisioning:
    prov = parse.provisioning(tomllib.loads(text))
    validate(prov)
    return prov


def test_a_prompt_russian_sounds_name_otherwise_is_played_under_the_russian_name() -> None:
    assert table.file_in(table.TRY_LATER, "ru") == "pls-try-call-later"
    assert table.file_in(table.TRY_LATER, "en") == "please-try-call-later"
    assert table.file_in(table.TRY_LATER, None) == "please-try-call-later"
    assert table.file_in(table.GOODBYE, "ru") == "vm-goodbye"  # the same file in both
    assert table.localised(TRY_LATER, "ru") == "sound:pls-try-call-later"
    assert table.localised(TRY_LATER, "en_GB") == TRY_LATER  # a language naming nothing otherwise


def test_localising_a_playlist_renames_only_its_built_in_sounds() -> None:
    media = "sound:queue-thereare,number:12,sound:please-try-call-later,digits:5,sound:hotline/own"
    assert table.localised(media, "ru") == (
        "sound:queue-thereare,number:12,sound:pls-try-call-later,digits:5,sound:hotline/own")
    assert table.localised(media, None) == media


def test_every_renamed_prompt_is_one_of_the_table_and_renamed_to_another_file() -> None:
    for language, names in table.NAMES.items():
        assert set(names) <= table.ALL, language
        assert all(new != old for old, new in names.items()), language


def test_a_russian_queue_offering_callbacks_needs_the_russian_files_and_an_english_one_the_english() -> None:
    needed = prompts.needed(prov_of(RUSSIAN_CALLBACKS))
    assert needed["ru"]["pls-try-call-later"] == "callbacks (built in)"
    assert "please-try-call-later" not in needed["ru"]
    assert needed["en"]["please-try-call-later"] == "callbacks (built in)"
    assert "pls-try-call-later" not in needed["en"]
    # the hold time says minutes with `number:`: its digit files are asked for too
    assert {"queue-holdtime", "queue-minutes", "digits/15", "digits/40"} <= set(needed["ru"])
    assert {"vm-tocallback", "vm-press", "vm-enter-num-to-call", "if-correct-press"} <= set(needed["ru"])


def test_a_queues_survey_sounds_are_needed_in_its_callers_language() -> None:
    text = RUSSIAN_CALLBACKS.replace('callback_key = "5"\n\n[queues.english]',
                                     'survey = ["hotline/rate"]\nsurvey_thanks = "auth-thankyou"\n\n'
                                     '[queues.english]', 1)
    needed = prompts.needed(prov_of(text))
    assert needed["ru"]["hotline/rate"] == "queues.support" and needed["ru"]["auth-thankyou"]
    assert "hotline/rate" not in needed["en"]


def test_every_sound_a_provisioning_names_is_listed_with_its_place() -> None:
    text = RUSSIAN_CALLBACKS + """
[menus.main]
prompt = "hello-world"
invalid_prompt = "pm-invalid-option"
[menus.main.options]
"1" = {action = "queue:support", prompt = "hotline/connecting"}
"""
    text = text.replace('language = "en"\n', 'language = "en"\nclosed_prompt = "hotline/closed"\n')
    assert prompts.named(prov_of(text)) == {
        "hotline/closed": "hotlines.london", "hello-world": "menus.main",
        "pm-invalid-option": "menus.main", "hotline/connecting": "menus.main"}
