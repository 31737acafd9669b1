"""The login guard's parts on their own: forwarded-address parsing against the headers real proxies
write (repeated lines, the other header, junk hops), the limiter's reservation of attempts in flight,
the form tokens under a flood of form loads, and the origin check behind a proxy."""

from __future__ import annotations

import time

from starlette.datastructures import Headers

from edge.web.auth import Sessions
from edge.web.client_address import AddressResolver
from edge.web.login_guard import LoginLimiter, LoginTokens, limit_key, posted_by_this_page


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(raw=[(k.lower().encode(), v.encode()) for k, v in pairs])


def test_forwarded_for_takes_every_line_and_only_the_configured_header() -> None:
    proxy = AddressResolver(["10.0.0.1"])
    # HAProxy adds a second line; the client's own first line must not win
    two_lines = headers(("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5"))
    assert proxy.resolve("10.0.0.1", two_lines).forwarded == "203.0.113.5"
    # nginx appends to X-Forwarded-For and passes the client's own Forwarded through: not read
    both = headers(("Forwarded", "for=6.6.6.6"), ("X-Forwarded-For", "6.6.6.7, 203.0.113.5"))
    assert proxy.resolve("10.0.0.1", both).forwarded == "203.0.113.5"
    rfc = AddressResolver(["10.0.0.1"], "forwarded")
    assert rfc.resolve("10.0.0.1", both).forwarded == "6.6.6.6"
    assert rfc.resolve("10.0.0.1", headers(("X-Forwarded-For", "203.0.113.5"))).forwarded is None
    # a junk hop written right of the client's claim ends the walk: the peer alone
    assert proxy.resolve("10.0.0.1", headers(("X-Forwarded-For", "6.6.6.6, unknown"))).forwarded is None
    # trusted hops are skipped; an untrusted peer's headers are never read
    chained = AddressResolver(["10.0.0.0/24"])
    assert chained.resolve("10.0.0.1", headers(("X-Forwarded-For", "203.0.113.5, 10.0.0.2"))).forwarded == "203.0.113.5"
    assert proxy.resolve("192.0.2.9", two_lines).forwarded is None
    assert proxy.resolve("10.0.0.1", headers()).effective == "10.0.0.1"


def test_attempts_in_flight_are_reserved() -> None:
    limiter = LoginLimiter(3, free_failures=5)
    assert limiter.check("a", "li").wait_s == 0
    busy = limiter.check("a", "li")  # the first is still at the password hash
    assert busy.wait_s == 1 and busy.why == "pair"
    assert limiter.check("a", "wang").wait_s == 0 and limiter.check("a", "zhao").wait_s == 0
    assert limiter.check("a", "qian").why == "address"  # three in flight from one address: its ceiling
    limiter.failed("a", "li")
    limiter.succeeded("a", "wang")
    limiter.abandoned("a", "zhao")  # a store error: the reservation goes, nothing is counted
    assert limiter.check("a", "li").wait_s == 0
    limiter.abandoned("a", "li")
    # IPv6 is counted by its /64, IPv4-mapped addresses as IPv4
    assert limit_key("2001:db8:1:2::5") == limit_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert limit_key("::ffff:192.0.2.1") == "192.0.2.1" and limit_key("unknown") == "unknown"


def test_form_tokens_survive_a_flood_and_work_once() -> None:
    tokens = LoginTokens(lifetime_s=3600)
    mine = tokens.issue()
    for _ in range(20_000):  # a flood of form loads costs the server nothing to remember
        tokens.issue()
    assert tokens.redeem(mine) and not tokens.redeem(mine)  # still good after the flood, then used
    forged = mine[:-1] + ("0" if mine[-1] != "0" else "1")
    assert not tokens.redeem(forged) and not tokens.redeem("a.b.c") and not tokens.redeem("x" * 500)
    other = LoginTokens().issue()
    assert not tokens.redeem(other)  # another server's (or a restarted one's) token
    short = LoginTokens(lifetime_s=0.0)
    old = short.issue()
    time.sleep(1.1)  # the token's issue time has whole-second resolution: let it pass
    assert not short.redeem(old)


def test_origin_check_behind_a_proxy_and_sessions_that_stop_being_checked() -> None:
    same = {"origin": "https://gate.example.org", "sec-fetch-site": "same-origin"}
    assert posted_by_this_page(same, "127.0.0.1:8080", "https://gate.example.org/")  # proxy rewrote Host
    assert not posted_by_this_page(same, "127.0.0.1:8080")  # without public_origin: Host decides
    assert not posted_by_this_page({**same, "origin": "https://evil.example.org"}, "x", "https://gate.example.org")
    assert not posted_by_this_page({"origin": "null"}, "127.0.0.1:8080")
    assert not posted_by_this_page({"sec-fetch-site": "same-site"}, "127.0.0.1:8080")
    assert posted_by_this_page({}, "127.0.0.1:8080")  # curl: no browser to forge with
    sessions = Sessions(hours=1)
    assert sessions.fresh()  # nothing checks (a TestClient app): streams are not held to it
    sessions.watched = True
    sessions.check_all(lambda name: None)
    assert sessions.fresh()
    sessions._last_check -= Sessions.STALE_S + 0.1  # the checks stopped coming (the store cannot be read)
    assert not sessions.fresh()
