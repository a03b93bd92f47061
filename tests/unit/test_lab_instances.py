"""Several labs on one machine (hotline.lab.instances) and how the suite spreads over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.errors import LabError
from hotline.lab.instances import instance_from_env, lab_home, netns_name

from support.two_labs import ROOT_NETNS_FILES, lab_instance_of

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_lab_1_is_the_machines_own_and_lab_n_has_a_namespace_and_a_home_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_LAB_HOME", "/srv/labs/lab")
    assert (lab_home(1), netns_name(1)) == (Path("/srv/labs/lab"), None)
    assert (lab_home(2), netns_name(2)) == (Path("/srv/labs/lab-2"), "hotline-lab2")


@pytest.mark.parametrize(("value", "instance"), [("", 1), ("1", 1), ("2", 2), (" 3 ", 3)])
def test_the_instance_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str,
                                                  instance: int) -> None:
    monkeypatch.setenv("HOTLINE_LAB_INSTANCE", value)
    assert instance_from_env() == instance


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_an_instance_that_is_no_lab_number_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HOTLINE_LAB_INSTANCE", value)
    with pytest.raises(LabError, match="HOTLINE_LAB_INSTANCE"):
        instance_from_env()


def test_worker_gwn_runs_on_lab_n_plus_1_and_the_pinned_files_exist() -> None:
    assert [lab_instance_of(w) for w in ("gw0", "gw1", "gw2")] == [1, 2, 3]
    assert all((PROJECT_DIR / path).is_file() for path in ROOT_NETNS_FILES)
