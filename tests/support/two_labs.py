"""The suite on several labs at once (pytest-xdist, `make test`): worker gwN runs on lab N+1.

gw0 stays in the machine's network namespace, on lab 1; gw1 enters lab 2's namespace
(hotline-lab2, hotline.lab.instances) before it opens anything, so that every test it runs, and
everything those spawn (the daemon, sipp, psql), sees lab 2 on the very same 127.0.0.1 ports.
The tests that need the machine's network (pip) go to gw0 only: ROOT_NETNS_FILES."""

from __future__ import annotations

import os

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

from hotline.errors import LabError
from hotline.lab.instances import INSTANCE_ENV, ensure_netns, enter_netns, netns_name

ROOT_NETNS = "root_netns"  # the one work unit of the tests that must run in the machine's namespace
# Test files that need more than a lab: pip reaches the package index (gw1's namespace has no way out).
ROOT_NETNS_FILES = frozenset({"tests/e2e/test_installed_wheel.py"})
ROOT_WORKER = "gw0"


def lab_instance_of(worker: str) -> int:
    """gw0 -> 1, gw1 -> 2, ..."""
    return int(worker.removeprefix("gw")) + 1


def check_labs_for_workers(config: pytest.Config) -> None:
    """On the controller, before any worker starts: a namespace for every worker but gw0, or a
    usage error now (a worker that fails in its own configure is only restarted by xdist, and a run
    whose workers all failed so reports "no tests ran" with exit 0)."""
    if hasattr(config, "workerinput"):
        return
    workers = config.getoption("numprocesses", None)
    if not isinstance(workers, int) or workers < 2:
        return
    for instance in range(2, workers + 1):
        name = netns_name(instance)
        assert name is not None
        try:
            ensure_netns(name, instance)
        except LabError as exc:
            raise pytest.UsageError(f"{workers} workers need lab {instance}: {exc}") from exc


def enter_lab_of_worker(config: pytest.Config) -> None:
    """On an xdist worker gwN (N >= 1): lab N+1's instance and network namespace for this process
    and its children. Must run before anything opens a socket (a socket stays in the namespace
    it was opened in). Fails the worker loudly when the namespace cannot be had."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is None or worker == ROOT_WORKER:
        return
    instance = lab_instance_of(worker)
    os.environ[INSTANCE_ENV] = str(instance)  # Lab() here and in every child finds lab N+1
    name = netns_name(instance)
    assert name is not None
    try:
        ensure_netns(name, instance)
        enter_netns(name)
    except LabError as exc:
        raise pytest.UsageError(f"worker {worker} cannot run on lab {instance}: {exc}") from exc


class RootNetnsOnGw0(LoadScopeScheduling):
    """One test a unit, handed to whichever worker runs short (xdist's loadscope, with a scope per
    test), except the tests of ROOT_NETNS_FILES: one unit, which gw0 takes first, at the start (no
    long tail of it at the end), and no other worker ever takes. (By path, not by an xdist_group
    mark: xdist 3.8's loadgroup cannot rename the test ids of pytest 9.2, so it groups nothing.)"""

    def _split_scope(self, nodeid: str) -> str:
        return ROOT_NETNS if nodeid.split("::", 1)[0] in ROOT_NETNS_FILES else nodeid

    def _assign_work_unit(self, node: WorkerController) -> None:
        root_alive = any(n.gateway.id == ROOT_WORKER for n in self.nodes)
        if node.gateway.id == ROOT_WORKER and ROOT_NETNS in self.workqueue:
            self.workqueue.move_to_end(ROOT_NETNS, last=False)
        elif next(iter(self.workqueue)) == ROOT_NETNS and root_alive:
            others = [scope for scope in self.workqueue if scope != ROOT_NETNS]
            if not others:  # all that is left is gw0's: this worker is done
                node.shutdown()
                return
            self.workqueue.move_to_end(others[0], last=False)
        super()._assign_work_unit(node)
