"""Which Debian mirror the lab is built from, read from the machine's apt configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.errors import LabError
from hotline.lab import mirror

BOOKWORM_DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

NODESOURCE_DEB822 = """\
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/nodesource.gpg
"""


def apt_dir(tmp_path: Path, sources_list: str = "", **parts: str) -> Path:
    """An /etc/apt look-alike: sources.list plus sources.list.d/NAME files."""
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(sources_list)
    for name, text in parts.items():
        (tmp_path / "sources.list.d" / name.replace("_", ".")).write_text(text)
    return tmp_path


# -- mirror --------------------------------------------------------------------------------------


def test_the_main_archive_of_a_deb822_file_is_chosen_not_the_security_archive() -> None:
    sources = mirror.parse_deb822_sources(BOOKWORM_DEB822)
    assert mirror.pick_debian_mirror(sources) == "http://deb.debian.org/debian"


def test_the_security_archive_is_never_chosen_even_when_listed_first() -> None:
    security_first = "\n\n".join(reversed(BOOKWORM_DEB822.split("\n\n")))
    assert mirror.pick_debian_mirror(mirror.parse_deb822_sources(security_first)) == (
        "http://deb.debian.org/debian")


def test_third_party_repositories_are_ignored(tmp_path: Path) -> None:
    apt = apt_dir(tmp_path, a_nodesource_sources=NODESOURCE_DEB822,
                  z_debian_sources=BOOKWORM_DEB822)
    assert mirror.read_debian_mirror(apt) == "http://deb.debian.org/debian"


def test_a_one_line_sources_list_with_options_gives_its_mirror(tmp_path: Path) -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://mirror.example.org/debian/ trixie main contrib\n"
        "deb http://security.debian.org/debian-security trixie-security main\n"
    )
    assert mirror.read_debian_mirror(apt_dir(tmp_path, text)) == "http://mirror.example.org/debian"


def test_a_disabled_deb822_entry_is_skipped() -> None:
    disabled = BOOKWORM_DEB822.replace("Types: deb\n", "Types: deb\nEnabled: no\n", 1)
    assert mirror.pick_debian_mirror(mirror.parse_deb822_sources(disabled)) is None


def test_deb_src_only_entries_do_not_count() -> None:
    sources = mirror.parse_one_line_sources("deb-src http://deb.debian.org/debian sid main\n")
    assert mirror.pick_debian_mirror(sources) is None


def test_a_machine_without_a_debian_mirror_gets_one_clear_line(tmp_path: Path) -> None:
    apt = apt_dir(tmp_path, nodesource_sources=NODESOURCE_DEB822)
    with pytest.raises(LabError, match="no Debian mirror.*HOTLINE_LAB_MIRROR") as caught:
        mirror.read_debian_mirror(apt)
    assert "\n" not in str(caught.value)


def test_debian_suites_are_told_apart_from_others() -> None:
    assert mirror.is_debian_suite("bookworm")
    assert mirror.is_debian_suite("sid")
    assert mirror.is_debian_suite("trixie-updates")
    assert not mirror.is_debian_suite("bookworm-security")
    assert not mirror.is_debian_suite("buster/updates")
    assert not mirror.is_debian_suite("nodistro")
    assert not mirror.is_debian_suite("jammy")
