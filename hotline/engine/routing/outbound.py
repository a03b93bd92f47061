"""Which outside numbers may be dialled, and through which trunk (toll fraud: nothing outside a
trunk's allow-list is ever dialled).

A trunk allows E.164 prefixes ('+7495', '+7916'); a number is dialled only in its canonical E.164
form, valid by phonenumbers, and only when it starts with one of the prefixes. Prefixes, not
regular expressions: an engineer reads '+7495' at a glance, while a regex like '\\+7.*' quietly lets
'+7809' premium numbers through. Provisioning refuses a prefix that is a whole country code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hotline.errors import DialRefused
from hotline.numbers import to_e164
from hotline.provision.model import Trunk

E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def refusal(trunk: Trunk, number: str) -> str | None:
    """Why `number` may not be dialled through `trunk`, or None when it may."""
    if not isinstance(number, str) or not E164.fullmatch(number):
        return f"{number!r} is not a number in E.164 form (like +74951234567)"
    if to_e164(number) != number:
        return f"{number} is not a valid telephone number"
    if not any(number.startswith(prefix) for prefix in trunk.allow):
        return f"{number} is outside trunk {trunk.name}'s allowed prefixes ({', '.join(trunk.allow)})"
    return None


def may_dial(trunk: Trunk, number: str) -> bool:
    """Whether `number` (E.164) may be dialled through `trunk`."""
    return refusal(trunk, number) is None


def trunk_for(trunks: Iterable[Trunk], number: str) -> Trunk:
    """The trunk `number` goes out through: of those allowing it, the one with the longest
    matching prefix (the most specific), then by name. DialRefused when none allows it."""
    trunks = list(trunks)
    candidates = [(max(len(p) for p in t.allow if number.startswith(p)), t.name, t)
                  for t in trunks if may_dial(t, number)]
    if not candidates:
        reasons = "; ".join(r for t in sorted(trunks, key=lambda t: t.name)
                            if (r := refusal(t, number)) is not None)
        raise DialRefused(f"no trunk may dial {number!r}" + (f": {reasons}" if reasons else
                                                             ": no trunk is provisioned"))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    return candidates[0][2]


def dial_endpoint(trunk: Trunk, number: str) -> str:
    """The ARI originate endpoint for `number` through `trunk`, checked once more right here: this
    is the one place a dial string to the outside is made."""
    why = refusal(trunk, number)
    if why is not None:
        raise DialRefused(f"not dialling through trunk {trunk.name}: {why}")
    return f"PJSIP/{number}@{trunk.endpoint}"
