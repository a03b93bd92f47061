"""The committed browser SIP client is what its notice says: the sha256 of the file, the versions
hotline/web/package.json pins, and a licence for every package in it (`make web-check` rebuilds it)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "hotline" / "web"
BUNDLE = WEB / "static" / "jssip.min.js"
NOTICE = WEB / "static" / "jssip.min.js.LICENSE.txt"


def test_the_notice_names_the_committed_bundle_by_its_sha256() -> None:
    [digest] = re.findall(r"^sha256 ([0-9a-f]{64})$", NOTICE.read_text(), re.M)
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == digest


def test_the_notice_names_the_versions_package_json_pins_each_with_its_licence() -> None:
    package = json.loads((WEB / "package.json").read_text())
    pinned = {**package["dependencies"], **package["overrides"]}
    notice = NOTICE.read_text()
    listed = dict(re.findall(r"^=== (\S+) (\S+) \(MIT\)$", notice, re.M))
    assert listed == pinned
    assert notice.startswith(f"jssip.min.js: JsSIP {pinned['jssip']}, bundled for the browser by "
                             f"esbuild {package['devDependencies']['esbuild']}")
    assert notice.count("Permission is hereby granted, free of charge") == len(pinned)
