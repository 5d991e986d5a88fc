"""Names that become MQTT topics and broker accounts: community and car ids, and the broker user of a car.

Rules of this module:
- An id is 1-64 characters of `a-z`, `0-9`, `_` and `-`: nothing that MQTT gives a meaning (`+`, `#`, `/`), no
  space, no newline, no upper case (two ids that differ only in case would be one person's typo and two topics).
- A car's broker user is `<community>-<car>`. Since `-` may appear in both ids, two different pairs can give the
  same user (`a-b`/`c` and `a`/`b-c`); whoever generates accounts must refuse such a collision (broker.py does).
"""

from __future__ import annotations

import ipaddress
import re

ID_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def id_problem(kind: str, value: object) -> str | None:
    """Why ``value`` cannot be a community or car id, or None if it can."""
    if not isinstance(value, str):
        return f"{kind} id must be text (got {type(value).__name__})"
    if not ID_PATTERN.fullmatch(value):
        return f"{kind} id {value!r} must be 1-64 characters of a-z, 0-9, '_' and '-'"
    return None


def broker_user(community: str, car: str) -> str:
    return f"{community}-{car}"


def is_loopback(host: str) -> bool:
    """True for a broker on this machine (where a password cannot be overheard on a network)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a broker's address (an IP address, `[v6]` too, or a DNS name), or None if it can. A
    name paho's resolver cannot even encode (`a..b`) killed its network thread at every reconnection."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return None
    except ValueError:
        pass
    labels = host.split(".")
    if not 0 < len(host) <= 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        return f"{host[:80]!r} is neither an IP address nor a host name"
    return None
