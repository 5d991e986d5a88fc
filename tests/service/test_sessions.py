"""Sessions, CSRF tokens and lockouts, frame by frame on a clock passed in: expiry, bounded tables, lockouts per
account and per client address that end and that a good login clears."""

from __future__ import annotations

from carctl.service.sessions import MAX_SESSIONS, MAX_TRACKED, Lockout, Sessions, csrf_matches


def test_a_session_lasts_its_lifetime_and_no_longer() -> None:
    sessions = Sessions(lifetime_s=60.0)
    token, session = sessions.open("alice", "maintenance", now_s=100.0)
    assert sessions.get(token, 159.9) == session and session.may_change
    assert sessions.get(token, 160.0) is None
    assert sessions.get(token, 100.0) is None, "an expired session is forgotten"


def test_tokens_are_random_and_only_their_digest_is_kept() -> None:
    sessions = Sessions(60.0)
    first, _ = sessions.open("alice", "read", 0.0)
    second, _ = sessions.open("alice", "read", 0.0)
    assert first != second and len(first) >= 40
    assert first not in repr(sessions._by_digest)
    for forged in (None, "", "x", first[:-1], first + "x", "a" * 5000):
        assert sessions.get(forged, 1.0) is None


def test_logout_and_a_bounded_table() -> None:
    sessions = Sessions(60.0)
    token, _ = sessions.open("alice", "read", 0.0)
    sessions.close(token)
    assert sessions.get(token, 1.0) is None
    tokens = [sessions.open(f"user{n}", "read", 0.0)[0] for n in range(MAX_SESSIONS + 10)]
    assert len(sessions) == MAX_SESSIONS
    assert sessions.get(tokens[0], 1.0) is None and sessions.get(tokens[-1], 1.0) is not None


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    sessions = Sessions(60.0)
    _, session = sessions.open("alice", "maintenance", 0.0)
    _, other = sessions.open("bob", "maintenance", 0.0)
    assert csrf_matches(session, session.csrf_token)
    for wrong in (None, "", other.csrf_token, session.csrf_token[:-1], "\udcff"):
        assert not csrf_matches(session, wrong)


def test_a_lockout_per_account_and_per_client_that_ends() -> None:
    lockout = Lockout(failures=3, lockout_s=300.0)
    keys = ("user:alice", "client:10.0.0.5")
    for _ in range(2):
        lockout.failed(keys, 0.0)
    assert lockout.locked(keys, 0.0) == 0
    lockout.failed(keys, 1.0)
    assert lockout.locked(keys, 1.0) == 300.0
    # The account is locked from any address, and the address for any account.
    assert lockout.locked(("user:alice", "client:10.0.0.9"), 2.0) > 0
    assert lockout.locked(("user:bob", "client:10.0.0.5"), 2.0) > 0
    assert lockout.locked(("user:bob", "client:10.0.0.9"), 2.0) == 0
    assert lockout.locked(keys, 301.0) == 0
    lockout.failed(keys, 302.0)
    assert lockout.locked(keys, 302.0) == 0, "after a lockout has run out the count starts again"


def test_a_good_login_clears_the_count_and_the_table_is_bounded() -> None:
    lockout = Lockout(3, 60.0)
    keys = ("user:alice", "client:a")
    lockout.failed(keys, 0.0)
    lockout.failed(keys, 0.0)
    lockout.succeeded(keys)
    lockout.failed(keys, 0.0)
    assert lockout.locked(keys, 0.0) == 0
    for n in range(MAX_TRACKED * 2):
        lockout.failed((f"client:{n}",), 0.0)
    assert len(lockout) <= MAX_TRACKED
