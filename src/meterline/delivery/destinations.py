"""Where webhooks may go: public internet addresses only, unless the operator allows private ones.

A token holder registers the URL and reads the delivery log, so a webhook to `127.0.0.1`,
`169.254.169.254` or a private network would let them probe (and read answers from) services
behind the server. By default such destinations are refused twice:

- at registration (`check_endpoint_url`): URLs with userinfo, and hosts that are, or resolve to,
  a loopback, private, link-local, multicast, reserved or unspecified address;
- at send time, after DNS resolution (`resolver.PublicOnlyResolver`, the resolver of the dispatcher's
  connection pool, and `refusal` for hosts written as an IP address), so a name that resolved
  to a public address at registration and to an internal one later (DNS rebinding) is refused
  on the very addresses the connection would use.

`METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` allows private destinations (a receiver on the
same machine or network, as tests and the example app use).
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from meterline.domain.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PRIVATE_RULE = (
    "must not point at a loopback, private, link-local, multicast or unspecified address "
    "(set METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow it)"
)


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address is judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def refusal(url: str, allow_private: bool) -> str | None:
    """Why a URL may not be sent to, judged without DNS (userinfo; a host that is an IP address).
    A pure function of its arguments, asked before every attempt: kept per URL."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if allow_private:
        return None
    address = ip_literal(parts.hostname or "")
    if address is not None and not is_public(address):
        return PRIVATE_RULE
    return None


def check_endpoint_url(url: str, allow_private: bool, field: str = "url") -> None:
    """At registration: refuse what `refusal` refuses, and names resolving to a private address.

    A name that does not resolve now is accepted: it may be created later, and every send
    checks again after resolution.
    """
    problem = refusal(url, allow_private)
    if problem is None and not allow_private:
        parts = urlsplit(url)
        try:
            infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            infos = []
        addresses = {ip_literal(str(info[4][0])) for info in infos}
        if any(a is not None and not is_public(a) for a in addresses):
            problem = PRIVATE_RULE
    if problem is not None:
        raise InvalidInput(f"{field}: {problem}")
