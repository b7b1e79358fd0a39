"""Logging in: sessions, fixation, timeouts, brute force, same answer for unknown accounts."""

from __future__ import annotations

import time

from newsletter.web.desk.sessions import COOKIE
from web.desk.desk_helpers import PASSWORD, Desk


def test_login_then_dashboard_then_logout(desk: Desk) -> None:
    desk.user()
    assert desk.client.get("/desk/", follow_redirects=False).status_code == 303
    res = desk.login()
    assert res.status_code == 303 and res.headers["location"] == "/desk/"
    cookie = res.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/desk" in cookie
    page = desk.client.get("/desk/")
    assert page.status_code == 200 and "ana@example.org" in page.text
    out = desk.post("/desk/logout")
    assert out.status_code == 303
    assert desk.client.get("/desk/", follow_redirects=False).status_code == 303
    actions = [e.action for e in desk.store.desk.audit_log()]
    assert actions[:2] == ["session.logout", "session.login"]


def test_a_login_gets_a_new_session_id(desk: Desk) -> None:
    desk.user()
    desk.login()
    before = desk.client.cookies.get(COOKIE)
    # an attacker planted their own (valid) session cookie: logging in replaces it
    desk.login()
    after = desk.client.cookies.get(COOKIE)
    assert before and after and before != after
    # the old id is dead in the store too, not only replaced in this browser
    desk.client.cookies.set(COOKIE, before, domain="news.example.org", path="/desk")
    assert desk.client.get("/desk/", follow_redirects=False).status_code == 303


def test_unknown_account_gets_the_same_answer_in_similar_time(desk: Desk) -> None:
    desk.user()
    timings = {}
    bodies = {}
    for label, email in (("wrong", "ana@example.org"), ("unknown", "nobody@example.org")):
        start = time.perf_counter()
        res = desk.login(email, "not the password at all")
        timings[label] = time.perf_counter() - start
        assert res.status_code == 400
        bodies[label] = res.text.replace(email, "EMAIL")
    import re

    strip = lambda s: re.sub(r'value="[^"]*"', "", s)  # noqa: E731  (tokens differ)
    assert strip(bodies["wrong"]) == strip(bodies["unknown"])
    # both verified an argon2 hash: neither is an order of magnitude faster
    assert timings["unknown"] > timings["wrong"] / 5


def test_attempts_per_account_are_limited_even_with_the_right_password(desk: Desk) -> None:
    desk.user()
    for _ in range(5):
        assert desk.login(password="wrong password!!").status_code == 400
    assert desk.login(password=PASSWORD).status_code == 429
    # an unknown address is limited after as many attempts: it reveals nothing
    for _ in range(5):
        assert desk.login("nobody@example.org", "wrong password!!").status_code == 400
    assert desk.login("nobody@example.org", "wrong password!!").status_code == 429


def test_attempts_per_ip_are_limited(desk: Desk) -> None:
    for n in range(50):
        desk.login(f"n{n}@example.org", "wrong password!!")
    assert desk.login("other@example.org", "wrong password!!").status_code == 429


def test_idle_and_absolute_timeouts(desk: Desk) -> None:
    desk.user()
    desk.login()
    desk.clock.advance(minutes=29)
    assert desk.client.get("/desk/").status_code == 200
    desk.clock.advance(minutes=29)  # idle 29 min again: still alive
    assert desk.client.get("/desk/").status_code == 200
    desk.clock.advance(minutes=31)
    assert desk.client.get("/desk/", follow_redirects=False).status_code == 303
    desk.login()
    for _ in range(12 * 3):  # busy all day, never idle: 12 hours end it anyway
        desk.clock.advance(minutes=20)
        res = desk.client.get("/desk/", follow_redirects=False)
    assert res.status_code == 303


def test_forged_cookie_is_refused(desk: Desk) -> None:
    desk.client.cookies.set(COOKIE, "abc.def", domain="news.example.org", path="/desk")
    assert desk.client.get("/desk/", follow_redirects=False).status_code == 303


def test_login_redirects_only_inside_the_desk(desk: Desk) -> None:
    desk.user()
    page = desk.client.get("/desk/login?next=https://evil.example.com/")
    from web.desk.desk_helpers import form_token

    res = desk.client.post(
        "/desk/login",
        data={
            "csrf_token": form_token(page.text),
            "email": "ana@example.org",
            "password": PASSWORD,
            "next": "https://evil.example.com/",
        },
        follow_redirects=False,
    )
    assert res.headers["location"] == "/desk/"


def test_housekeeping_deletes_expired_sessions(desk: Desk) -> None:
    from newsletter.web.housekeeping import housekeep

    desk.user()
    desk.login()
    assert housekeep(desk.settings, desk.store, desk.clock()).desk_sessions == 0
    desk.clock.advance(minutes=31)
    assert housekeep(desk.settings, desk.store, desk.clock()).desk_sessions == 1
