"""Text that came from the network (caller ids, SIP headers, dialled addresses), made safe to store,
log, print and pass on to another SIP message.

A caller chooses these bytes: a From display name of 10 kB, a number with an escaped CR/LF
(`+7916%0D%0AX-Evil: yes`, which Asterisk decodes and would write into the INVITE it sends an
agent), terminal escapes, bidi overrides that make `hotline case show` print a line backwards.
Whatever passes `clean_text` has none of them and a bounded length.
"""

from __future__ import annotations

import unicodedata

NAME_LIMIT = 256  # a caller name, a channel name: longer is not a name, it is an attack
NUMBER_LIMIT = 128  # a caller number or SIP user (E.164 has 15 digits; SIP users run longer)

# Cc: C0/C1 controls (NUL, CR, LF, ESC...), Cs: lone surrogates (PostgreSQL and UTF-8 refuse them),
# Zl/Zp: U+2028/U+2029, line breaks to str.splitlines() and to many log viewers.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Bidirectional embeddings, overrides and isolates reorder what a terminal prints after them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(text: str, limit: int = NAME_LIMIT) -> str:
    """`text` without control characters, line separators and bidi controls, cut to `limit`."""
    if text.isprintable():  # the usual case, checked in C: none of them (they are all unprintable)
        return text[:limit]
    # Looked at up to a bound: a caller's 10 kB of controls costs this once per event, not more.
    return "".join(ch for ch in text[:8 * limit] if _kept(ch))[:limit]


def _kept(ch: str) -> bool:
    return ch not in _BIDI_CONTROLS and unicodedata.category(ch) not in _DROPPED_CATEGORIES


def one_line(text: str) -> str:
    """`text` on one line, every unprintable character shown as its Python escape (`\\r`, `\\x1b`,
    `\\u2028`, `\\u202e`): for logs, where a reader must see that something was there."""
    if text.isprintable():  # the usual case: nothing to escape
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
