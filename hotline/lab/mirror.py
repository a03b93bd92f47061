"""Which Debian mirror the lab's root is built from: read from the machine's own apt
configuration, never hard-coded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import LabError
from hotline.lab.shell import read_text

# Debian's release names and aliases: how a Debian mirror is told apart from third-party repos.
DEBIAN_SUITES = frozenset({
    "sid", "unstable", "testing", "stable", "oldstable", "oldoldstable", "experimental",
    "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
})


@dataclass(frozen=True)
class AptSource:
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    types: tuple[str, ...] = ("deb",)
    enabled: bool = True


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The stanzas of a `.sources` file (deb822: blank lines between stanzas, '#' comments)."""
    sources = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields = _deb822_fields(stanza)
        if "uris" not in fields:
            continue
        sources.append(AptSource(
            uris=tuple(fields["uris"].split()),
            suites=tuple(fields.get("suites", "").split()),
            types=tuple(fields.get("types", "deb").split()),
            enabled=fields.get("enabled", "yes").strip().lower() not in {"no", "false", "0"},
        ))
    return sources


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and key:  # a continuation line (Signed-By with an inline key)
            fields[key] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            fields[key] = value.strip()
    return fields


def parse_one_line_sources(text: str) -> list[AptSource]:
    """The `deb URI SUITE COMPONENT...` lines of a sources.list (options in [...] skipped)."""
    sources = []
    for raw in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0])
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("deb", "deb-src"):
            sources.append(AptSource(uris=(parts[1],), suites=(parts[2],), types=(parts[0],)))
    return sources


def is_debian_suite(suite: str) -> bool:
    """bookworm, bookworm-updates, sid... are Debian's; *-security lives on another archive."""
    if "security" in suite or "/" in suite:  # buster/updates was the old security suite
        return False
    return suite.split("-", 1)[0] in DEBIAN_SUITES


def pick_debian_mirror(sources: list[AptSource]) -> str | None:
    """The first enabled http(s) `deb` entry whose suites are Debian's, without a trailing /."""
    for source in sources:
        if not source.enabled or "deb" not in source.types:
            continue
        if not any(is_debian_suite(suite) for suite in source.suites):
            continue
        for uri in source.uris:
            if uri.startswith(("http://", "https://")) and "security" not in uri:
                return uri.rstrip("/")
    return None


def read_debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses; LabError if it has none."""
    sources: list[AptSource] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        sources += parse_deb822_sources(read_text(path))
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        sources += parse_one_line_sources(read_text(path))
    mirror = pick_debian_mirror(sources)
    if mirror is None:
        raise LabError(f"no Debian mirror found in {apt_dir} (sources.list, sources.list.d); "
                       "set HOTLINE_LAB_MIRROR to one, e.g. http://<mirror>/debian")
    return mirror
