"""Where each Asterisk node the daemon serves is, with the login to use there: the provisioned
nodes' addresses with the settings' ARI and AMI users (every node is rendered by the same
`hotline apply`), or, with no node provisioned, the settings' one Asterisk under the `node` name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from hotline.config import Endpoint, Settings
from hotline.provision.model import Node


@dataclass(frozen=True)
class NodeAddress:
    name: str
    ari: Endpoint
    ami: Endpoint


def node_addresses(settings: Settings, nodes: Mapping[str, Node]) -> list[NodeAddress]:
    if not nodes:
        return [NodeAddress(settings.node, settings.ari, settings.ami)]
    return [NodeAddress(n.name, endpoint_at(settings.ari, n.ari), endpoint_at(settings.ami, n.ami))
            for n in sorted(nodes.values(), key=lambda n: n.name)]


def endpoint_at(login: Endpoint, url: str | None) -> Endpoint:
    """`login`'s user and secret at `url`'s scheme, host and port (provisioning checked its form);
    None: `login` as it is (no node provisioned)."""
    if url is None:
        return login
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return dataclasses.replace(login, scheme=parts.scheme, host=parts.hostname, port=parts.port)
