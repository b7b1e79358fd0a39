"""Tracking tokens: compact, URL-safe, purpose bound, rotated keys verify, nothing but a
genuine token's own target is ever a redirect target."""

from __future__ import annotations

import re

import pytest

from newsletter.send.tokens import TokenError, TokenSigner
from newsletter.send.tracking import LinkTracker, TrackingSigner

BASE = "https://news.example.org"


def test_round_trip_is_url_safe_and_short() -> None:
    signer = TrackingSigner(["k1"])
    token = signer.sign(
        "click", edition_id=12, delivery_id=3456, locale="ka", target="https://e.example.org/a?b=1"
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}", token)
    assert len(token) < 80
    found = signer.verify("click", token)
    assert (found.edition_id, found.delivery_id, found.locale, found.target) == (
        12,
        3456,
        "ka",
        "https://e.example.org/a?b=1",
    )


def test_purpose_and_key_are_bound_in() -> None:
    signer = TrackingSigner(["k1"])
    opened = signer.sign("open", edition_id=1, delivery_id=2, locale="bg")
    with pytest.raises(TokenError):
        signer.verify("click", opened)
    with pytest.raises(TokenError):
        TrackingSigner(["other"]).verify("open", opened)
    # an unsubscribe token (itsdangerous, same secret) is not a tracking token
    with pytest.raises(TokenError):
        signer.verify("click", TokenSigner(["k1"]).sign("unsubscribe", 2, 1))
    # rotation: the new key signs, the old one still verifies
    rotated = TrackingSigner(["k2", "k1"])
    assert rotated.verify("open", opened).delivery_id == 2
    new = rotated.sign("open", edition_id=1, delivery_id=2, locale="bg")
    with pytest.raises(TokenError):  # signed with k2, which the old config does not know
        TrackingSigner(["k1"]).verify("open", new)


def test_every_byte_of_a_token_matters() -> None:
    signer = TrackingSigner(["k1"])
    token = signer.sign(
        "click", edition_id=1, delivery_id=None, locale="bg", target="https://e.example.org/"
    )
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, ch in enumerate(token):
        if ch == ".":
            continue
        other = alphabet[(alphabet.index(ch) + 1) % len(alphabet)]
        bad = token[:i] + other + token[i + 1 :]
        try:
            found = signer.verify("click", bad)
        except TokenError:
            continue
        # base64 padding bits may be ignored; the data must then be the same
        assert found == signer.verify("click", token), i


def test_rewrite_tracks_outside_links_and_story_pages_only() -> None:
    tracker = LinkTracker(TrackingSigner(["k"]), BASE, clicks=True, opens=False, anonymous=True)
    html = (
        '<a href="https://e.example.org/x?a=1&amp;b=2">s</a>'
        f'<a href="{BASE}/story/5/bg">read</a>'
        f'<a href="{BASE}/unsubscribe/tok">u</a>'
        '<a href="mailto:x@example.org">m</a>'
    )
    out = tracker.rewrite(html, edition_id=1, locale="bg", delivery_id=9)
    tokens = re.findall(rf'href="{BASE}/r/([^"]+)"', out)
    assert len(tokens) == 2
    signer = TrackingSigner(["k"])
    targets = [signer.verify("click", t).target for t in tokens]
    assert targets == ["https://e.example.org/x?a=1&b=2", f"{BASE}/story/5/bg"]
    assert all(signer.verify("click", t).delivery_id is None for t in tokens)  # anonymous
    assert f'href="{BASE}/unsubscribe/tok"' in out and 'href="mailto:x@example.org"' in out
