"""Every prompt the engine plays by its own choice, in one table, and its file in each language.

Asterisk's core sounds do not name every prompt alike in every language: Debian's Russian set
(asterisk-core-sounds-ru-gsm) says "please try to call later" as `pls-try-call-later`, the
English one as `please-try-call-later`, and neither has the other's. A prompt is named here by its
English file; `NAMES` gives a language's own file where it differs (checked against the lab's
`en` and `ru` sounds: tests/e2e/test_language_calls.py). The engine plays every caller's prompt
through `localised()` with the channel's language, and `hotline apply` checks the files
`file_in()` names, so it checks what will be played.
"""

from __future__ import annotations

from collections.abc import Mapping

SOUND = "sound:"

# Played outside any queue or menu.
NOT_IN_SERVICE = "ss-noservice"  # a number no hotline owns
# Menus' defaults.
INVALID_KEY = "pm-invalid-option"  # a key no option has (a menu's invalid_prompt by default)
GOODBYE = "vm-goodbye"  # retries used up; a callback stored
# Queue announcements: the position, the hold time, "press N" for the video and callback keys.
YOU_ARE_NEXT = "queue-youarenext"
THERE_ARE = "queue-thereare"
CALLS_WAITING = "queue-callswaiting"
HOLD_TIME = "queue-holdtime"
LESS_THAN = "queue-less-than"
MINUTE = "queue-minute"
MINUTES = "queue-minutes"
PRESS = "vm-press"
TO_CALL_BACK = "vm-tocallback"  # the callback offer, and the whisper to the agent placing one
# Asking a callback's number.
ENTER_NUMBER = "vm-enter-num-to-call"
THEN_POUND = "vm-then-pound"
NUMBER_IS = "vm-num-i-have"
YOU_ENTERED = "you-entered"
IF_CORRECT = "if-correct-press"
THANK_YOU = "auth-thankyou"
TRY_LATER = "please-try-call-later"  # the request could not be stored
# `digits:N` and the read-back say single digits; `number:N` (positions, minutes below 100) says
# these too, with the language's grammar.
DIGITS = tuple(f"digits/{n}" for n in range(10))
NUMBERS = (*DIGITS, *(f"digits/{n}" for n in range(10, 20)), *(f"digits/{n}" for n in range(20, 100, 10)))

# By the feature that plays them (hotline.provision.prompts asks for those a place uses).
MENU = (INVALID_KEY, GOODBYE)
POSITION = (YOU_ARE_NEXT, THERE_ARE, CALLS_WAITING, *NUMBERS)
HOLDTIME = (HOLD_TIME, LESS_THAN, MINUTE, MINUTES, *NUMBERS)
KEY_OFFER = (PRESS, *DIGITS)
CALLBACK_OFFER = (TO_CALL_BACK, *KEY_OFFER)
CALLBACK = (ENTER_NUMBER, THEN_POUND, NUMBER_IS, YOU_ENTERED, IF_CORRECT, GOODBYE, THANK_YOU, TRY_LATER,
            INVALID_KEY, *DIGITS)
WHISPER = (TO_CALL_BACK, *DIGITS)
ALL = frozenset((NOT_IN_SERVICE, *MENU, *POSITION, *HOLDTIME, *CALLBACK_OFFER, *CALLBACK, *WHISPER))

# A language's own file for a prompt its sounds name differently (the closest they have).
NAMES: Mapping[str, Mapping[str, str]] = {
    "ru": {TRY_LATER: "pls-try-call-later"},
}


def file_in(prompt: str, language: str | None) -> str:
    """The sound file that says `prompt` (a name from this table, or any other sound, kept) in
    `language` (None: Asterisk's default, the English names)."""
    return NAMES.get(language or "", {}).get(prompt, prompt)


def localised(media: str, language: str | None) -> str:
    """An ARI media list (comma-separated URIs) with each `sound:` named as a built-in prompt
    (provisioned ones too: apply checks them under the same file) named as `language` names it;
    everything else as it was."""
    if language not in NAMES:
        return media
    return ",".join(SOUND + file_in(uri.removeprefix(SOUND), language) if uri.startswith(SOUND) else uri
                    for uri in media.split(","))


def sound(prompt: str) -> str:
    """A prompt as an ARI media URI."""
    return SOUND + prompt
