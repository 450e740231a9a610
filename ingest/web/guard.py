"""Which addresses the fetcher may connect to: public unicast only, unless `KBAGENT_ALLOW_HOSTS` says otherwise.

The guard resolves a host once and hands back the address it checked; callers connect to that address, so a
second DNS answer (rebinding) can never change where a request goes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ingest.web.errors import FetchError, Refused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""(host, port) → IP address strings; the seam tests replace with a stub."""

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
SCHEMES = ("http", "https")


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form = _embedded_ipv4(ip)
        if form:
            if embedded is None:
                return f"{form} address"
            reason = refusal(embedded)
            return f"{reason} ({form} form of {embedded})" if reason else None
    checks = [
        (ip.is_unspecified, "unspecified address"),
        (ip.is_loopback, "loopback address"),
        (ip.is_link_local, "link-local address"),
        (ip.is_multicast, "multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "carrier-grade NAT address"),
        (ip.is_reserved, "reserved address"),
        (ip.is_private, "private address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local address"),
        (not ip.is_global, "non-global address"),
    ]
    return next((reason for refused, reason in checks if refused), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), or a form refused outright."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in NAT64_LOCAL:
        return None, "local-use NAT64"
    if ip.teredo is not None:
        return None, "Teredo"
    if ip in IPV4_COMPATIBLE and int(ip) > 1:
        return None, "IPv4-compatible"
    return None, ""


def parse_ip(host: str) -> IPAddress | None:
    """An IP literal in any spelling a resolver accepts: dotted, decimal, hex, octal, short forms, IPv6."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        numbers = [_inet_number(p) for p in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    return ipaddress.IPv4Address(value * 256 ** (5 - len(parts)) + last)


def _inet_number(part: str) -> int:
    """One inet_aton component: 0x hex, leading-zero octal, or decimal."""
    if part.lower().startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    if not part.isdigit():
        raise ValueError(part)
    return int(part)


@dataclass
class AllowList:
    """`KBAGENT_ALLOW_HOSTS`: host names or IPs (any port), `host:port`, or CIDR networks."""

    hosts: set[str] = field(default_factory=set)
    host_ports: set[tuple[str, int]] = field(default_factory=set)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> AllowList:
        allow = cls()
        for entry in (e.strip().lower() for e in spec.split(",")):
            if not entry:
                continue
            if "/" in entry:
                try:
                    allow.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as exc:
                    raise FetchError(f"KBAGENT_ALLOW_HOSTS: bad network {entry!r}") from exc
                continue
            host, port = _split_host_port(entry)
            if port is None:
                allow.hosts.add(_normal_host(host))
            else:
                allow.host_ports.add((_normal_host(host), port))
        return allow

    def allows_host(self, host: str, port: int) -> bool:
        host = _normal_host(host)
        return host in self.hosts or (host, port) in self.host_ports

    def allows_address(self, ip: IPAddress, port: int) -> bool:
        text = str(ip)
        return self.allows_host(text, port) or any(ip.version == n.version and ip in n for n in self.networks)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
        raise FetchError(f"KBAGENT_ALLOW_HOSTS: bad port in {entry!r}")
    return entry, None


def _normal_host(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    ip = parse_ip(host)
    return str(ip) if ip is not None else host


class Guard:
    """Decides, for a URL or a host and port, whether and where the fetcher may connect."""

    def __init__(self, allow: AllowList | str = "", resolver: Resolver | None = None) -> None:
        self.allow = allow if isinstance(allow, AllowList) else AllowList.parse(allow)
        self.resolver = resolver or system_resolver

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """Scheme, credentials and host syntax; no DNS. Returns the parsed URL."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise FetchError(f"invalid URL {str(url)[:200]!r}") from exc
        if parsed.scheme not in SCHEMES:
            raise Refused(f"only http and https URLs are fetched, not {parsed.scheme or 'a relative URL'!r}")
        if parsed.userinfo:
            raise Refused("URLs with credentials (user:password@) are refused")
        if not parsed.host:
            raise FetchError(f"URL without a host: {str(url)[:200]}")
        return parsed

    def check(self, url: str | httpx.URL) -> str:
        """The address `url` may be fetched from; Refused says why not."""
        parsed = self.check_url(url)
        return self.resolve(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))

    def resolve(self, host: str, port: int) -> str:
        """Resolves once, checks every address, and returns the one to connect to."""
        name = host.strip("[]").rstrip(".").lower()
        if self.allow.allows_host(name, port):
            return self._first(name, port)
        literal = parse_ip(name)
        if literal is None and (name == "localhost" or name.endswith(".localhost")):
            raise Refused(f"{host} is refused (localhost)")
        addresses = [literal] if literal is not None else self._lookup(name, port)
        for ip in addresses:
            reason = refusal(ip)
            if reason and not self.allow.allows_address(ip, port):
                shown = host if str(ip) == name else f"{host} ({ip})"
                raise Refused(f"{shown} is refused: {reason} (set KBAGENT_ALLOW_HOSTS to allow it)")
        return str(addresses[0])

    def _first(self, name: str, port: int) -> str:
        literal = parse_ip(name)
        return str(literal) if literal is not None else str(self._lookup(name, port)[0])

    def _lookup(self, name: str, port: int) -> list[IPAddress]:
        found = []
        for text in self.resolver(name, port):
            try:
                found.append(ipaddress.ip_address(text.split("%")[0]))
            except ValueError as exc:
                raise FetchError(f"resolver returned a bad address for {name!r}: {text!r}") from exc
        if not found:
            raise FetchError(f"cannot resolve host {name!r}")
        return found
