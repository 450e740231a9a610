"""The SSRF guard's decisions, table-driven, on resolved addresses from a stub resolver: nothing connects here."""

from __future__ import annotations

import pytest

from ingest.web import AllowList, FetchError, Guard, Refused
from ingest.web.guard import parse_ip

PUBLIC = "93.184.216.34"
NAMES = {
    "public.example": [PUBLIC],
    "public6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
    "rebind.example": ["10.0.0.7"],
    "mixed.example": [PUBLIC, "192.168.0.10"],  # one bad answer is enough to refuse
    "metadata.example": ["169.254.169.254"],
    "localhost": [PUBLIC],  # even a lying resolver can't make localhost public
    "intranet.corp": ["10.1.2.3"],
}


class StubResolver:
    """Answers from NAMES and records what it was asked; IP literals must never reach it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in NAMES:
            raise FetchError(f"cannot resolve host {host!r}")
        return NAMES[host]


REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),  # decimal
    ("http://0x7f.1/", "loopback"),  # hex, short form
    ("http://0x7f000001/", "loopback"),
    ("http://0177.0.0.1/", "invalid URL"),  # octal dotted: httpx rejects it before any lookup
    ("http://017700000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
    ("http://[2002:7f00:0001::]/", "6to4"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4"),  # 6to4 of 169.254.169.254
    ("http://[64:ff9b::7f00:1]/", "NAT64"),
    ("http://[64:ff9b::a00:1]/", "NAT64"),  # NAT64 of 10.0.0.1
    ("http://[64:ff9b:1::1]/", "NAT64"),
    ("http://[::127.0.0.1]/", "IPv4-compatible"),
    ("http://localhost/", "localhost"),
    ("http://localhost./", "localhost"),
    ("http://LOCALHOST:8080/", "localhost"),
    ("http://api.localhost/", "localhost"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://metadata.example/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://rebind.example/", "private"),
    ("http://mixed.example/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast|reserved"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://[2001:db8::1]/", "private|non-global"),  # documentation
    ("http://192.0.2.1/", "private|non-global"),  # TEST-NET-1
]

ALLOWED = [
    (f"http://{PUBLIC}/", PUBLIC),
    ("https://public.example/page", PUBLIC),
    ("http://public6.example/", "2606:2800:220:1:248:1893:25c8:1946"),
    ("http://[2002:5db8:d822::1]/", "2002:5db8:d822::1"),  # 6to4 of a public address
    ("http://[64:ff9b::5db8:d822]/", "64:ff9b::5db8:d822"),  # NAT64 of a public address
    ("http://1572395042/", PUBLIC),  # decimal spelling of a public address
]

BAD_URLS = [
    ("file:///etc/passwd", "only http and https"),
    ("ftp://public.example/x", "only http and https"),
    ("gopher://public.example/", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("http://user:secret@public.example/", "credentials"),
    ("https://user@public.example/", "credentials"),
    ("/relative/path", "only http and https"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused(url: str, reason: str) -> None:
    resolver = StubResolver()
    with pytest.raises(FetchError) as caught:
        Guard(resolver=resolver).check(url)
    message = str(caught.value)
    assert any(r in message for r in reason.split("|")), message
    assert "\n" not in message
    assert isinstance(caught.value, Refused) == (reason != "invalid URL")
    assert all(any(c.isalpha() for c in name) for name in resolver.asked), "IP literals never reach DNS"


@pytest.mark.parametrize(("url", "address"), ALLOWED)
def test_allowed_public_addresses(url: str, address: str) -> None:
    assert Guard(resolver=StubResolver()).check(url) == address


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_bad_urls(url: str, reason: str) -> None:
    with pytest.raises(FetchError, match=reason):
        Guard(resolver=StubResolver()).check(url)


def test_resolves_once_and_returns_the_checked_address() -> None:
    resolver = StubResolver()
    assert Guard(resolver=resolver).check("http://public.example:8080/") == PUBLIC
    assert resolver.asked == ["public.example"]


def test_unresolvable_host_is_a_clear_error() -> None:
    with pytest.raises(FetchError, match=r"cannot resolve host 'nowhere\.invalid'"):
        Guard(resolver=StubResolver()).check("http://nowhere.invalid/")


@pytest.mark.parametrize(
    ("allow", "url", "ok"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/", True),
        ("127.0.0.1:8000", "http://127.0.0.1:8000/", True),
        ("127.0.0.1:8000", "http://127.0.0.1:9000/", False),
        ("127.0.0.0/8", "http://127.0.0.2:9000/", True),
        ("127.0.0.1/32", "http://127.0.0.2/", False),
        ("10.0.0.0/8", "http://intranet.corp/", True),  # CIDRs apply to resolved addresses
        ("intranet.corp", "http://intranet.corp/wiki", True),
        ("intranet.corp.", "http://INTRANET.corp./wiki", True),
        ("intranet.corp:8443", "https://intranet.corp:8443/", True),
        ("intranet.corp:8443", "https://intranet.corp/", False),
        ("intranet.corp", "http://10.1.2.3/", False),  # naming a host doesn't open its address to all
        ("[::1]:8080, localhost", "http://[::1]:8080/", True),
        ("localhost", "http://localhost/", True),
        ("0x7f.1", "http://2130706433/", True),  # spellings compare as addresses
        ("", "http://127.0.0.1/", False),
    ],
)
def test_allow_hosts(allow: str, url: str, ok: bool) -> None:
    guard = Guard(allow, resolver=lambda host, port: NAMES.get(host, ["127.0.0.1"]))
    if ok:
        guard.check(url)
    else:
        with pytest.raises(Refused):
            guard.check(url)


@pytest.mark.parametrize("spec", ["10.0.0.0/33", "host:port", "a:b:c/99"])
def test_bad_allow_list_entries_are_named(spec: str) -> None:
    with pytest.raises(FetchError, match="KBAGENT_ALLOW_HOSTS"):
        AllowList.parse(spec)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("0xA9FEA9FE", "169.254.169.254"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("08.1.1.1", None),
        ("example.com", None),
    ],
)
def test_ip_spellings(spelling: str, address: str | None) -> None:
    parsed = parse_ip(spelling)
    assert (str(parsed) if parsed else None) == address
