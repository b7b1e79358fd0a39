"""Which IP addresses gathered content may make us connect to, and how hosts spell them.

:func:`refusal` says why an address is not public (loopback, private, link-local, CGNAT,
multicast, reserved, documentation, ...), looking inside IPv6 forms that carry an IPv4
address. :func:`literal_address` reads a URL host the way browsers and ``inet_aton`` do,
so ``2130706433`` and ``0x7f.1`` are known to be ``127.0.0.1`` before any lookup.
"""

from __future__ import annotations

import ipaddress

__all__ = ["IPAddress", "literal_address", "literal_address_or_none", "refusal"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = [
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (CGNAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
]
_V6 = [
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("::/8", "a reserved address"),
]
_V4_NETS = [(ipaddress.IPv4Network(net), why) for net, why in _V4]
_V6_NETS = [(ipaddress.IPv6Network(net), why) for net, why in _V6]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refusal(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched from (``"a loopback address"``), or ``None``.

    Addresses that carry an IPv4 address inside (IPv4-mapped, NAT64, 6to4, Teredo) are
    judged by that address too, so ``::ffff:127.0.0.1`` is as loopback as ``127.0.0.1``.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            why = refusal(ip.ipv4_mapped)
            return None if why is None else f"{why} ({ip.ipv4_mapped} inside {ip})"
        embedded = _embedded_v4(ip)
        for inner in embedded:
            why = refusal(inner)
            if why is not None:
                return f"{why} ({inner} inside {ip})"
        for net, why in _V6_NETS:
            if ip in net:
                return why
        if not embedded and not ip.is_global:
            return "not a public address"
        return None
    for net4, why in _V4_NETS:
        if ip in net4:
            return why
    return None if ip.is_global else "not a public address"


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host denotes when it is numeric, in any spelling, else ``None``.

    Browsers and ``inet_aton`` read ``2130706433``, ``0x7f.1``, ``017700000001`` and
    ``127.1`` as ``127.0.0.1``; so does this (the WHATWG URL rules). A host that ends in a
    number but is no valid address raises ``ValueError``.
    """
    text = host.strip("[]")
    if ":" in text:
        return ipaddress.IPv6Address(text.split("%", 1)[0])
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if not labels or not _is_number(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    numbers = [_number(label, host) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _is_number(label: str) -> bool:
    if label[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isascii() and label.isdigit()


def _number(label: str, host: str) -> int:
    try:
        if label[:2].lower() == "0x":
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10)
    except ValueError as exc:
        raise ValueError(f"{host!r} is not a valid IPv4 address") from exc


def literal_address_or_none(host: str) -> IPAddress | None:
    """:func:`literal_address`, with ``None`` for hosts that are no valid address."""
    try:
        return literal_address(host)
    except ValueError:
        return None
