"""The rehearsal of several hosts (`make cluster-test`): one cluster for the module, removed even on failure."""

import os

import pytest

from .cluster import cluster_create, cluster_start, cluster_stop


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.fail("The rehearsal of several hosts creates network namespaces: run `make cluster-test` as root.")
    created = cluster_create()
    try:
        cluster_start(created)
        yield created
    finally:
        cluster_stop(created)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed rehearsal shows the end of every host's log (they are deleted with the cluster)."""
    report = yield
    started = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
    if report.failed and started is not None:
        report.sections.append(("cluster logs", started.logs()))
    return report
