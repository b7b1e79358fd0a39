"""Requests as an unauthenticated attacker sends them: ids that overflow a BIGINT, control
characters and broken encodings in paths, queries and forms, bodies that are not forms,
multipart bombs, posts from opaque or foreign origins, and a fuzz of every route of the
app. Every one is a 4xx; none logs a traceback or an error. On every backend under test."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.responses import Response
from starlette.routing import Mount, Route

from newsletter.config import Settings
from newsletter.models import SubscriberStatus
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from newsletter.web.csrf import CsrfTokens
from web.web_helpers import SECRET, Clock, TestClient, Web, publish_edition

OWN = "https://news.example.org"
FOREIGN_ORIGINS = [
    "null",
    "https://evil.example.com",
    "https://news.example.org.evil.example.com",
    "http://news.example.org",  # another scheme is another origin
    "https://news.example.org:8443",
]
FOREIGN_REFERERS = [
    "https://evil.example.com/page",
    "null",
    "not a url",
    "https://news.example.org@evil.example.com/",
    "data:text/html,<form>",
]


def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and no error in the log: a hostile request is an info line at most."""
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def _csrf(web: Web, purpose: str, subject: int = 0) -> str:
    return CsrfTokens([SECRET]).issue(purpose, subject)


def _signup_form(web: Web, **fields: Any) -> dict[str, Any]:
    return {
        "csrf_token": _csrf(web, "subscribe"),
        "email": "mila@example.org",
        "name": "Mila Ivanova",
        "locale": "en",
        "lists": ["news"],
        "consent": "yes",
        **fields,
    }


# ---------------------------------------------------------------- named attacks


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/archive/1234567890123456789012345/en", 404),  # 25 digits: past BIGINT
        ("/archive/9223372036854775808/en", 404),  # 2**63
        ("/archive/99999999999999999999999999999999999999999999999999/bg", 404),
        ("/archive/segments/%00/en", 400),
        ("/archive/segments/news/en%00", 400),
        ("/archive/segments/news/%1b%5b31m/feed.atom", 400),
        ("/unsubscribe/%00abc", 400),
        ("/preferences/abc%7f", 400),
        ("/subscribe?lang=%00", 400),
        ("/subscribe?lang=%ff%fe", 400),  # not UTF-8
        ("/subscribe?%c0%80=1", 400),  # overlong UTF-8 NUL
        ("/archive/%ff%fe/en", 404),
        ("/confirm/" + "A" * 5000, 400),
    ],
)
def test_hostile_paths_and_queries_are_4xx(
    web: Web, caplog: pytest.LogCaptureFixture, path: str, status: int
) -> None:
    publish_edition(web.settings, web.store)
    assert web.client.get(path).status_code == status
    _quiet(caplog)


def test_hostile_form_bodies_are_4xx_and_store_nothing(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    form = _signup_form(web)
    csrf = form["csrf_token"]
    # 400: not a form we can read; 403: read, but it carries no valid CSRF token
    attacks: list[tuple[dict[str, Any], int | set[int]]] = [
        ({"data": _signup_form(web, name="Mila\x00Ivanova")}, 400),
        ({"data": _signup_form(web, name="\x1b[2J\x1b]0;owned\x07")}, 400),
        ({"data": _signup_form(web, email="mila@example.org\x00x")}, 400),
        ({"content": '{"email": "x@example.org"}', "headers": _ct("application/json")}, 400),
        ({"content": b"\xff\xfe\x00", "headers": _ct("text/plain")}, 400),
        ({"content": b"email=%ff%fe&name=%zz&csrf_token=" + csrf.encode(), "headers": _ct()}, 400),
        ({"content": b"a=b", "headers": _ct("multipart/form-data")}, 400),  # no boundary
        (
            {"content": b"--x\r\nbroken", "headers": _ct("multipart/form-data; boundary=x")},
            {400, 403},
        ),
        ({"files": {"upload": ("a.txt", b"x" * 1000)}, "data": form}, 400),  # no files
        ({"content": "&".join(f"f{n}=x" for n in range(1000)), "headers": _ct()}, 400),
        ({"content": b"x=" + b"y" * 2_000_000, "headers": _ct()}, 413),
    ]
    for kwargs, status in attacks:
        response = web.client.post("/subscribe", **kwargs)
        expected = status if isinstance(status, set) else {status}
        assert response.status_code in expected, (kwargs.get("headers"), response.status_code)
    assert web.store.subscribers.count() == {} and web.emails() == []
    _quiet(caplog)


def _ct(value: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    return {"content-type": value}


def test_duplicated_fields_take_the_first_and_never_fail(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    body = "&".join(
        [
            f"csrf_token={_csrf(web, 'subscribe')}",
            "csrf_token=forged",
            "email=mila@example.org",
            "email=other@example.org",
            "locale=en",
            "locale=xx",
            "lists=news",
            "lists=news",
            "consent=yes",
            "consent=no",
        ]
    )
    response = web.client.post("/subscribe", content=body, headers=_ct())
    assert response.status_code == 200
    assert web.store.subscribers.find("mila@example.org") is not None
    assert web.store.subscribers.find("other@example.org") is None
    _quiet(caplog)


# ---------------------------------------------------------------- origins


def _post_routes(web: Web) -> Iterator[tuple[str, str]]:
    """(route template, concrete path with a genuine token) for every POST route outside
    the webhooks, read from the app itself so that a new form route is covered too."""
    sub = web.add("target@example.org")
    for route in web.client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and "POST" in (route.methods or ()):
            if route.path.startswith("/webhooks"):
                continue
            purpose = route.path.split("/")[1]
            purpose = {"unsubscribe": "unsubscribe", "confirm": "confirm"}.get(
                purpose, "preferences"
            )
            token = web.token(purpose, sub)
            yield route.path, route.path.replace("{token}", token)


def test_opaque_and_foreign_origins_are_refused_on_every_form_route(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    routes = list(_post_routes(web))
    assert {"/subscribe", "/unsubscribe/{token}", "/preferences/{token}"} <= {r for r, _ in routes}
    form = {"List-Unsubscribe": "One-Click", "csrf_token": "x", "email": "mila@example.org"}
    for template, path in routes:
        for origin in FOREIGN_ORIGINS:
            response = web.client.post(path, data=form, headers={"origin": origin})
            assert response.status_code == 403, (template, origin)
        for referer in FOREIGN_REFERERS:
            response = web.client.post(path, data=form, headers={"referer": referer})
            assert response.status_code == 403, (template, referer)
        two = [("origin", OWN), ("origin", "null")]
        assert web.client.post(path, data=form, headers=two).status_code == 403, template
    # nothing happened: the one-click unsubscribe with Origin: null did not unsubscribe
    target = web.store.subscribers.find("target@example.org")
    assert target is not None and target.status is SubscriberStatus.ACTIVE
    assert web.store.subscribers.find("mila@example.org") is None
    _quiet(caplog)


def test_own_origin_referer_or_none_still_post(web: Web) -> None:
    for headers in ({"origin": OWN}, {"referer": f"{OWN}/subscribe?lang=en"}, {}):
        email = f"ok{len(headers)}{''.join(headers)}@example.org"
        response = web.client.post(
            "/subscribe", data=_signup_form(web, email=email), headers=headers
        )
        assert response.status_code == 200, headers
        assert web.store.subscribers.find(email) is not None
    # a mail client's one-click POST carries no Origin: it still unsubscribes
    sub = web.add("ana@example.org")
    token = web.token("unsubscribe", sub)
    response = web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert web.store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED


def test_pages_ask_browsers_for_a_real_origin_on_form_posts(web: Web) -> None:
    # under "no-referrer" browsers send Origin: null with our own forms, which is refused
    assert web.client.get("/subscribe").headers["referrer-policy"] == "same-origin"


# ---------------------------------------------------------------- the safety net


def test_an_unexpected_error_is_one_log_line_and_a_bare_500(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: Any) -> Response:
        raise RuntimeError("database password is hunter2\nTraceback (most recent call last)")

    web.client.app.router.routes.append(Route("/broken", broken))  # type: ignore[attr-defined]
    with caplog.at_level(logging.INFO, logger="newsletter.web"):
        response = web.client.get("/broken")  # raise_server_exceptions: it would raise here
    assert response.status_code == 500
    assert "hunter2" not in response.text and "Traceback" not in response.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "RuntimeError" in errors[0].getMessage() and "/broken" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()  # the message is escaped, not a forged line
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="newsletter.web"):
        web.client.get("/broken")
    assert [r for r in caplog.records if r.exc_info]  # the traceback, at debug level only


# ---------------------------------------------------------------- fuzz of every route


@pytest.fixture
def fuzz_app(
    make_config: Callable[..., Settings],
    store: Store,
    clock: Clock,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Web]:
    """The app with every webhook provider configured, a published edition, a subscriber."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    environ = {
        "SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(der).decode(),
        "MAILGUN_WEBHOOK_SIGNING_KEY": "key-fuzz",
        "PM_SECRET": "postmark-fuzz",
        "BREVO_SECRET": "brevo-fuzz",
        "RESEND_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"k" * 24).decode(),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = make_config(
        locales={"default": "bg", "available": ["bg", "en"]},
        lists=[{"name": "news", "description": "News", "public": True}],
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        web={"base_url": OWN, "subscribe_limit_per_ip": 10_000},
        webhooks={
            "sendgrid": {},
            "mailgun": {},
            "ses": {"topic_arns": ["arn:aws:sns:eu-central-1:123456789012:nl"]},
            "postmark": {"secret_env": "PM_SECRET"},
            "brevo": {"secret_env": "BREVO_SECRET"},
            "resend": {},
        },
    )
    signer = TokenSigner([SECRET], clock=lambda: clock().timestamp())
    app = create_app(settings, store, signer=signer, clock=clock)
    publish_edition(settings, store, locales=("bg", "en"))
    with TestClient(app, base_url=OWN) as client:
        yield Web(client, settings, store, signer, clock, tmp_path / "outbox")


def _templates(app: Any) -> list[tuple[str, list[str]]]:
    """(path template, methods) of every route, mounted ones with their prefix."""
    found: list[tuple[str, list[str]]] = []
    for route in app.routes:
        if isinstance(route, Mount):
            found += [(route.path + p, m) for p, m in _templates(route)]
        elif isinstance(route, Route):
            found.append((route.path, sorted((route.methods or {"GET"}) - {"HEAD"})))
    return found


PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
FIELDS = [
    "csrf_token", "email", "name", "locale", "lists", "consent", "page_locale",
    "List-Unsubscribe", "via", "confirm", "action", "pause_weeks", "signature",
]  # fmt: skip
hostile_text = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(["\x00", "\x1b[31m", "%", "%ff", "%00", "/", "..", "\ufffd", "\u202e"]),
    max_size=16,
).map("".join)


@st.composite
def requests(draw: st.DrawFn, web: Web) -> dict[str, Any]:
    """One request to a route of the app, with every part chosen by hypothesis."""
    sub = web.store.subscribers.find("fuzz@example.org")
    assert sub is not None
    template, methods = draw(st.sampled_from(_templates(web.client.app)))
    tokens = [web.token(p, sub) for p in ("unsubscribe", "preferences", "confirm")]
    csrf = [_csrf(web, p, s) for p, s in (("subscribe", 0), ("preferences", sub.id))]
    csrf += [_csrf(web, "erase", sub.id), _csrf(web, "confirm", sub.id)]

    def fill(match: re.Match[str]) -> str:
        if match.group(2) == "int":
            number = draw(st.integers(0, 10**30) | st.sampled_from([1, 2**63, 2**64]))
            return str(number)
        value = draw(st.sampled_from(tokens) | hostile_text | st.sampled_from(["sendgrid", "ses"]))
        return quote(value, safe="") if draw(st.booleans()) else value.replace("/", "")

    path = PARAM.sub(fill, template)
    query = draw(st.sampled_from(["", "?lang=en", "?lang=", "?%ff=1", "?lang=%00"]) | hostile_text)
    method = draw(st.sampled_from(methods))
    kwargs: dict[str, Any] = {"headers": {}}
    if method == "POST":
        kind = draw(st.sampled_from(["form", "bytes", "json"]))
        if kind == "form":
            keys = st.sampled_from(FIELDS) | hostile_text
            values = st.lists(st.sampled_from(csrf) | hostile_text, min_size=1, max_size=3)
            kwargs["data"] = draw(st.dictionaries(keys, values, max_size=8))
        else:
            kwargs["content"] = draw(st.binary(max_size=300))
            kwargs["headers"]["content-type"] = draw(
                st.sampled_from(
                    ["application/json", "text/plain", "multipart/form-data; boundary=b", ""]
                )
                | hostile_text.map(lambda t: t.encode("utf-8").decode("latin-1"))
            )
        if draw(st.booleans()):
            kwargs["headers"]["origin"] = draw(st.sampled_from([OWN, *FOREIGN_ORIGINS]))
    kwargs["headers"]["accept-language"] = draw(
        st.sampled_from(["de", "bg;q=nan", "*;q=1e999", "en-US,en;q=0.5"])
    )
    kwargs["headers"] = {
        k: v for k, v in kwargs["headers"].items() if "\n" not in v and "\r" not in v
    }
    return {"method": method, "url": path + query, **kwargs}


def test_fuzz_every_route_never_answers_5xx(
    fuzz_app: Web, caplog: pytest.LogCaptureFixture
) -> None:
    fuzz_app.add("fuzz@example.org")
    covered: set[str] = set()

    @settings(
        max_examples=250,
        deadline=None,
        derandomize=True,  # the same requests every run: a failure is reproducible
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=requests(fuzz_app))
    def check(request: dict[str, Any]) -> None:
        caplog.clear()
        try:
            response = fuzz_app.client.request(**request)
        except Exception as exc:  # the client itself refusing a header is not the app's
            if type(exc).__name__ in ("InvalidURL", "LocalProtocolError", "UnicodeEncodeError"):
                return
            raise
        assert response.status_code < 500, (request, response.text[:300])
        assert "Traceback" not in response.text
        _quiet(caplog)
        covered.add(request["url"].split("/")[1].split("?")[0])

    check()
    assert {"archive", "subscribe", "preferences", "unsubscribe", "webhooks"} <= covered
