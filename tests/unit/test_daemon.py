"""Pure parts of the composition root."""

from __future__ import annotations

import pytest

from hotline.daemon import endpoint_device_state


@pytest.mark.parametrize("endpoint, state", [
    ({"resource": "ivanov", "state": "offline", "channel_ids": []}, "UNAVAILABLE"),
    ({"resource": "ivanov", "state": "online", "channel_ids": []}, "NOT_INUSE"),
    ({"resource": "ivanov", "state": "online", "channel_ids": ["1795.1"]}, "INUSE"),
    ({"resource": "ivanov", "state": "unknown", "channel_ids": []}, "UNKNOWN"),
    ({"resource": "ivanov"}, "UNKNOWN"),
])
def test_an_ari_endpoint_reads_as_the_device_state_app_queue_would_see(endpoint: dict[str, object],
                                                                      state: str) -> None:
    assert endpoint_device_state(endpoint) == state
