"""Signed tokens: purpose-bound, tamper-proof, rotatable, expiring; secrets loading."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.send.tokens import TokenError, TokenSigner, load_secrets

T0 = 1_790_000_000.0


def test_round_trip_with_and_without_edition() -> None:
    signer = TokenSigner(["k1-secret"], clock=lambda: T0)
    data = signer.verify("unsubscribe", signer.sign("unsubscribe", 42, 7))
    assert (data.purpose, data.subscriber_id, data.edition_id) == ("unsubscribe", 42, 7)
    assert data.issued_at.timestamp() == T0
    plain = signer.verify("confirm", signer.sign("confirm", 5))
    assert (plain.subscriber_id, plain.edition_id) == (5, None)


def test_token_is_url_safe() -> None:
    token = TokenSigner(["k"]).sign("preferences", 123456, 99)
    assert all(c.isalnum() or c in "-_." for c in token)


@pytest.mark.parametrize("other", ["preferences", "confirm"])
def test_wrong_purpose_rejected(other: str) -> None:
    signer = TokenSigner(["k1-secret"])
    token = signer.sign("unsubscribe", 42)
    with pytest.raises(TokenError, match=f"invalid {other} token"):
        signer.verify(other, token)


@pytest.mark.parametrize("position", [0, 5, -3])
def test_tampered_token_rejected(position: int) -> None:
    signer = TokenSigner(["k1-secret"])
    token = signer.sign("unsubscribe", 42, 3)
    # not the last character: its low bits may be base64 padding that decodes the same
    i = position % len(token)
    tampered = token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1 :]
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", tampered)


def test_garbage_and_foreign_key_rejected() -> None:
    signer = TokenSigner(["k1-secret"])
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", "not-a-token")
    foreign = TokenSigner(["someone-elses-key"]).sign("unsubscribe", 42)
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", foreign)


def test_key_rotation_old_key_verifies_new_key_signs() -> None:
    old = TokenSigner(["old-key"])
    issued_before = old.sign("unsubscribe", 42, 1)
    rotated = TokenSigner(["new-key", "old-key"])
    assert rotated.verify("unsubscribe", issued_before).subscriber_id == 42
    issued_after = rotated.sign("unsubscribe", 43, 2)
    # signed with the new key: the new key alone verifies it, the old one does not
    assert TokenSigner(["new-key"]).verify("unsubscribe", issued_after).subscriber_id == 43
    with pytest.raises(TokenError):
        old.verify("unsubscribe", issued_after)


def test_expiry() -> None:
    now = [T0]
    signer = TokenSigner(["k"], clock=lambda: now[0])
    token = signer.sign("confirm", 42)
    now[0] = T0 + 3600
    assert signer.verify("confirm", token, max_age=3600).subscriber_id == 42
    now[0] = T0 + 3601
    with pytest.raises(TokenError, match="expired"):
        signer.verify("confirm", token, max_age=3600)
    # without max_age a token does not expire (unsubscribe links must keep working)
    assert signer.verify("confirm", token).subscriber_id == 42


def test_unknown_purpose_and_empty_secrets() -> None:
    with pytest.raises(ValueError, match="unknown token purpose"):
        TokenSigner(["k"]).sign("login", 1)
    with pytest.raises(ConfigError):
        TokenSigner([])


def test_load_secrets_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NL_TEST_SECRET", " new-key , old-key,, ")
    assert load_secrets("NL_TEST_SECRET", tmp_path / "var") == ["new-key", "old-key"]
    assert not (tmp_path / "var").exists()


def test_load_secrets_creates_development_key_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NL_TEST_SECRET", raising=False)
    var = tmp_path / "var"
    with caplog.at_level(logging.WARNING, logger="newsletter.send.tokens"):
        first = load_secrets("NL_TEST_SECRET", var)
    assert "development signing key" in caplog.text
    key_file = var / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) == 1 and len(first[0]) >= 32
    assert load_secrets("NL_TEST_SECRET", var) == first
    monkeypatch.setenv("NL_TEST_SECRET", "")
    assert load_secrets("NL_TEST_SECRET", var) == first


def test_load_secrets_errors_name_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NL_TEST_SECRET", raising=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "secret.key").write_text("\n")
    with pytest.raises(ConfigError, match=r"secret\.key: development key file is empty"):
        load_secrets("NL_TEST_SECRET", tmp_path / "empty")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="a-file"):
        load_secrets("NL_TEST_SECRET", tmp_path / "a-file" / "var")


def test_pinned_signer_repeats_its_tokens_and_shares_the_keys() -> None:
    """A batch composed twice must give the same links: a pinned signer's tokens are stable."""
    keys = TokenSigner(["k-new", "k-old"])
    pinned = keys.pinned(1_790_000_000.0)
    first = pinned.sign("unsubscribe", 7, 3)
    assert pinned.sign("unsubscribe", 7, 3) == first
    assert keys.sign("unsubscribe", 7, 3) != first  # the unpinned clock moved on since 2026
    data = keys.verify("unsubscribe", first)
    assert (data.subscriber_id, data.edition_id) == (7, 3)
    assert int(data.issued_at.timestamp()) == 1_790_000_000


def test_token_is_compact() -> None:
    token = TokenSigner(["k"], clock=lambda: T0).sign("unsubscribe", 2**40, 2**31)
    assert len(token) == 44 and "." not in token


def test_every_flipped_bit_is_rejected() -> None:
    # the attack: change any bit of any byte (ids, timestamp, version or MAC) and resubmit
    import base64

    signer = TokenSigner(["k1-secret"], clock=lambda: T0)
    raw = base64.urlsafe_b64decode(signer.sign("unsubscribe", 42, 3))
    for i in range(len(raw)):
        for bit in range(8):
            forged = bytearray(raw)
            forged[i] ^= 1 << bit
            token = base64.urlsafe_b64encode(bytes(forged)).decode()
            with pytest.raises(TokenError):
                signer.verify("unsubscribe", token)


def test_truncated_extended_and_non_ascii_tokens_rejected() -> None:
    signer = TokenSigner(["k"])
    token = signer.sign("preferences", 42)
    for bad in (token[:-1], token + "A", token[:-4], "", "é" * 44, token.replace("A", "%")):
        with pytest.raises(TokenError):
            signer.verify("preferences", bad)


def test_a_token_for_the_confirm_purpose_cannot_be_made_from_an_unsubscribe_mac() -> None:
    # same payload bytes, MAC copied across purposes: the purpose is inside the MAC
    import base64

    signer = TokenSigner(["k"], clock=lambda: T0)
    unsub = base64.urlsafe_b64decode(signer.sign("unsubscribe", 42))
    confirm = base64.urlsafe_b64decode(signer.sign("confirm", 42))
    assert unsub[:17] == confirm[:17] and unsub[17:] != confirm[17:]


def test_old_format_links_verify_inside_the_rotation_window_only() -> None:
    now = [T0]
    signer = TokenSigner(["new-key", "old-key"], clock=lambda: now[0], legacy_days=30)
    old = TokenSigner(["old-key"], clock=lambda: T0).sign_legacy("unsubscribe", 42, 7)
    assert "." in old
    data = signer.verify("unsubscribe", old)
    assert (data.subscriber_id, data.edition_id, data.issued_at.timestamp()) == (42, 7, T0)
    with pytest.raises(TokenError):
        signer.verify("preferences", old)
    now[0] = T0 + 30 * 86_400 + 1
    with pytest.raises(TokenError, match="expired"):
        signer.verify("unsubscribe", old)
    # the compact format is not bound by the legacy window
    now[0] = T0
    fresh = signer.sign("unsubscribe", 42, 7)
    now[0] = T0 + 400 * 86_400
    assert signer.verify("unsubscribe", fresh).subscriber_id == 42


def test_ids_outside_the_format_are_refused_when_signing() -> None:
    signer = TokenSigner(["k"])
    for sub, ed in ((-1, None), (2**64, None), (1, 2**32), (1, -1)):
        with pytest.raises(ValueError):
            signer.sign("unsubscribe", sub, ed)
