"""Which prompts callers can hear in which language: the sound files a provisioning needs.

A caller hears prompts in the language of the number they dialled, else of its hotline (the
engine sets the channel's language as the call enters), until a menu key `language:LANG` switches
it; going on to another hotline, queue or menu keeps it. So the sounds a language needs are those
of every place a caller in that language can reach from its numbers (and from a hotline that sets
the language itself): hotlines' closed and recording announcements, menus' prompts, keys' prompts
(a language key's own prompt plays in the new language), queues' announcements, and the engine's
built-in prompts of the features those places use (invalid key, goodbye, position and hold time,
callback offer and number entry, the video key: hotline.engine.built_in_prompts). A sound is
asked for under the file the engine plays for it in that language (built_in_prompts.file_in), so
what is checked is what will be played. Callers whose language is not set hear Asterisk's default
language, which falls back to the sounds without a language: they need nothing here.

`needed()` is pure; hotline.asterisk.sounds looks the files up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hotline.engine.built_in_prompts import (
    CALLBACK,
    CALLBACK_OFFER,
    HOLDTIME,
    KEY_OFFER,
    MENU,
    POSITION,
    file_in,
)
from hotline.engine.ivr import INVALID_PROMPT
from hotline.provision.model import Menu, Provisioning, Queue, Target, TargetAction

Place = tuple[str, str, str]  # (hotlines | menus | queues | callback, name, language)


def needed(prov: Provisioning) -> dict[str, dict[str, str]]:
    """language -> {sound: where it is used (the first place found)}, for every language callers
    can hear."""
    out: dict[str, dict[str, str]] = {}
    seen: set[Place] = set()
    todo = list(_starts(prov))
    while todo:
        place = todo.pop()
        if place in seen:
            continue
        seen.add(place)
        kind, name, language = place
        for sound, where, then in _at(prov, kind, name, language):
            if sound is not None:
                sound_name, heard_in = sound if isinstance(sound, tuple) else (sound, language)
                out.setdefault(heard_in, {}).setdefault(file_in(sound_name, heard_in), where)
            if then is not None:
                todo.append(then)
    return out


def named(prov: Provisioning) -> dict[str, str]:
    """Every sound the provisioning names itself, whoever may hear it: {sound: where}."""
    out: dict[str, str] = {}
    for h in prov.hotlines.values():
        for sound in (h.closed_prompt, h.record_announcement):
            out.setdefault(sound or "", f"hotlines.{h.name}")
    for m in prov.menus.values():
        for sound in (m.prompt, m.timeout_prompt, m.invalid_prompt, *(o.prompt for o in m.options)):
            out.setdefault(sound or "", f"menus.{m.name}")
    for q in prov.queues.values():
        for sound in (q.record_announcement, *q.survey, q.survey_thanks):
            out.setdefault(sound or "", f"queues.{q.name}")
    out.pop("", None)
    return out


def languages_in_use(prov: Provisioning) -> list[str]:
    """Every language set on a hotline, a number or a menu key."""
    found = {h.language for h in prov.hotlines.values()} | {n.language for n in prov.numbers.values()}
    found |= {o.target.name for m in prov.menus.values() for o in m.options
              if o.target.action == TargetAction.LANGUAGE}
    return sorted(lang for lang in found if lang)


def _starts(prov: Provisioning) -> Iterator[Place]:
    for h in prov.hotlines.values():
        if h.language:
            yield "hotlines", h.name, h.language
    for n in prov.numbers.values():
        hotline = prov.hotlines.get(n.hotline)
        language = n.language or (hotline.language if hotline else None)
        if language:
            yield "hotlines", n.hotline, language


# (a sound heard (in the place's language, or (sound, language)), where, a place reached)
Step = tuple[str | tuple[str, str] | None, str, Place | None]


def _at(prov: Provisioning, kind: str, name: str, language: str) -> Iterator[Step]:
    if kind == "hotlines" and name in prov.hotlines:
        h = prov.hotlines[name]
        where = f"hotlines.{name}"
        yield from _sounds((h.closed_prompt, h.record_announcement), where)
        yield from _to(prov, (h.entry, h.closed, *(Target("queue", r.queue) for r in h.regions)),
                       language, where)
    elif kind == "menus" and name in prov.menus:
        yield from _menu(prov, prov.menus[name], language)
    elif kind == "queues" and name in prov.queues:
        yield from _queue(prov, prov.queues[name], language)
    elif kind == "callback":
        yield from _sounds(CALLBACK, "callbacks (built in)")


def _menu(prov: Provisioning, m: Menu, language: str) -> Iterator[Step]:
    where = f"menus.{m.name}"
    yield from _sounds((m.prompt, m.timeout_prompt, m.invalid_prompt or INVALID_PROMPT), where)
    yield from _sounds(MENU, f"{where} (built in)")
    for o in m.options:
        chosen = o.target.name if o.target.action == TargetAction.LANGUAGE and o.target.name else language
        key = f"{where}.options.{o.digit}"
        if o.prompt:  # a language key's own prompt plays in the language it chose
            yield (o.prompt, chosen), key, None
        if o.leads_to.action == TargetAction.REPEAT and chosen != language:
            yield None, key, ("menus", m.name, chosen)  # the menu again, in the new language
        yield from _to(prov, (o.leads_to,), chosen, key)


def _queue(prov: Provisioning, q: Queue, language: str) -> Iterator[Step]:
    where = f"queues.{q.name}"
    yield from _sounds((q.record_announcement, *q.survey, q.survey_thanks), where)
    if q.announce_period is not None:
        yield from _sounds(POSITION + (HOLDTIME if q.announce_holdtime else ()), f"{where} (built in)")
        if q.video_key is not None:
            yield from _sounds(KEY_OFFER, f"{where}.video_key (built in)")
        if q.callback_key is not None:
            yield from _sounds(CALLBACK_OFFER, f"{where}.callback_key (built in)")
    if q.callback_key is not None:
        yield None, where, ("callback", "", language)
    breakout = prov.menus.get(q.breakout_menu or "")
    targets = [o.leads_to for o in breakout.options] if breakout is not None else []
    yield from _to(prov, (q.overflow, *targets), language, where)


def _to(prov: Provisioning, targets: Iterable[Target], language: str, where: str) -> Iterator[Step]:
    for t in targets:
        if t.action in (TargetAction.MENU, TargetAction.QUEUE, TargetAction.HOTLINE) and t.name:
            yield None, where, (t.kind, t.name, language)
        elif t.action == TargetAction.VIDEO and t.name:
            yield None, where, ("queues", t.name, language)
        elif t.action == TargetAction.CALLBACK:
            yield None, where, ("callback", "", language)


def _sounds(names: Iterable[str | None], where: str) -> Iterator[Step]:
    for sound in names:
        if sound:
            yield sound, where, None
