//! The session store's scripts against a real redis-server: the lease (busy, renewal, a stale
//! holder fenced off), commits (version check, an idempotent retry, nothing written when a
//! check fails), release, TTL expiry, delete, trimming, and a store that is down, paused or
//! restarted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use agentry_runtime::conversation::{Block, Message, Role};
use agentry_runtime::session::{
    Commit, Loaded, Options, SessionError, SessionId, Sessions, Store, StoreMetrics,
};
use agentry_tests::redis::RedisServer;

const KEY: &str = "agentry:{demo/weather/s1}";

fn options(ttl: Duration, lease: Duration) -> Options {
    Options {
        ttl,
        max_messages: 100,
        max_context_tokens: None,
        lease,
        pod: "pod-a".into(),
        approval_timeout: Options::DEFAULT_APPROVAL_TIMEOUT,
    }
}

fn sessions_at(url: &str, options: Options, timeout: Duration) -> Sessions {
    let store = Store::connect_lazy(url, None, timeout, StoreMetrics::default()).expect("store");
    Sessions::new(store, "demo", "weather", options)
}

fn sessions(redis: &RedisServer) -> Sessions {
    let o = options(Duration::from_secs(60), Duration::from_secs(5));
    sessions_at(&redis.url(), o, Duration::from_secs(1))
}

fn id() -> SessionId {
    SessionId::parse("s1").unwrap()
}

fn answer(t: &str) -> Message {
    Message {
        role: Role::Assistant,
        content: vec![Block::Text(t.into())],
    }
}

fn turn(loaded: &Loaded, q: &str, max: usize) -> Commit {
    Commit::turn(
        loaded,
        &[Message::user_text(q), answer(&format!("re {q}"))],
        max,
        1,
    )
}

/// Polls `f` every 50 ms until it is true, for at most `limit`.
async fn eventually(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_second_invocation_is_refused_as_busy_until_the_first_commits() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    assert_eq!((a.state.version, a.messages.len()), (0, 0));
    match s.acquire(&id(), "inv-b").await {
        Err(SessionError::Busy {
            holder,
            retry_after,
        }) => {
            assert_eq!(holder, "pod-a, invocation inv-a");
            assert!(retry_after <= Duration::from_secs(5) && retry_after > Duration::ZERO);
        }
        other => panic!("expected busy, got {other:?}"),
    }
    assert_eq!(s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap(), 1);
    let b = s.acquire(&id(), "inv-b").await.unwrap();
    assert_eq!(b.state.version, 1);
    assert_eq!(b.messages, vec![Message::user_text("q1"), answer("re q1")]);
    assert_eq!(b.state.meta.turns, 1);
}

#[tokio::test]
async fn renewal_keeps_the_lease_past_its_time_and_a_lost_lease_cannot_be_renewed() {
    let redis = RedisServer::start();
    let o = options(Duration::from_secs(60), Duration::from_secs(1));
    let s = sessions_at(&redis.url(), o, Duration::from_secs(1));
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    let other = s.clone();
    let held = s
        .while_held(&a.lease, async {
            tokio::time::sleep(Duration::from_millis(1600)).await;
            // Past the first lease time: still busy for everyone else.
            other.acquire(&id(), "inv-b").await.err().map(|e| e.code())
        })
        .await
        .unwrap();
    assert_eq!(held, Some("session_busy"));
    redis.cli(&["DEL", &format!("{KEY}:lock")]);
    assert!(matches!(
        s.renew(&a.lease).await,
        Err(SessionError::LockLost)
    ));
}

#[tokio::test]
async fn a_holder_whose_lease_ran_out_cannot_commit_over_the_next_holder() {
    let redis = RedisServer::start();
    let o = options(Duration::from_secs(60), Duration::from_millis(300));
    let s = sessions_at(&redis.url(), o, Duration::from_secs(1));
    let stale = s.acquire(&id(), "inv-a").await.unwrap();
    let mut next = None;
    assert!(
        eventually(Duration::from_secs(3), async || {
            next = s.acquire(&id(), "inv-b").await.ok();
            next.is_some()
        })
        .await,
        "the lease did not run out"
    );
    let next = next.unwrap();
    let e = s.commit(&stale.lease, &turn(&stale, "old", 100)).await;
    assert!(matches!(e, Err(SessionError::LockLost)), "{e:?}");
    assert_eq!(redis.cli(&["LLEN", &format!("{KEY}:m")]), "0");
    assert_eq!(
        s.commit(&next.lease, &turn(&next, "new", 100))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_commit_on_a_version_that_moved_is_a_conflict_and_writes_nothing() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    redis.cli(&["HSET", &format!("{KEY}:s"), "v", "5"]);
    let e = s.commit(&a.lease, &turn(&a, "q1", 100)).await;
    assert!(matches!(e, Err(SessionError::Conflict)), "{e:?}");
    assert_eq!(redis.cli(&["LLEN", &format!("{KEY}:m")]), "0");
    assert_eq!(redis.cli(&["HGET", &format!("{KEY}:s"), "v"]), "5");
}

#[tokio::test]
async fn a_retried_commit_is_recognised_and_not_applied_twice() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    let c = turn(&a, "q1", 100);
    assert_eq!(s.commit(&a.lease, &c).await.unwrap(), 1);
    assert_eq!(s.commit(&a.lease, &c).await.unwrap(), 1);
    assert_eq!(redis.cli(&["LLEN", &format!("{KEY}:m")]), "2");
    assert_eq!(redis.cli(&["HGET", &format!("{KEY}:s"), "v"]), "1");
}

#[tokio::test]
async fn a_commit_whose_arguments_fail_the_check_writes_nothing() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    // An empty invocation id fails the script's argument check, which runs before any write.
    let a = s.acquire(&id(), "").await.unwrap();
    let e = s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap_err();
    assert_eq!(e.code(), "session_store_unavailable", "{e:?}");
    assert!(matches!(e, SessionError::Refused(_)), "{e:?}");
    // Nothing but the lease, which the failed commit did not release either.
    assert_eq!(redis.keys(), vec![format!("{KEY}:lock")]);
}

#[tokio::test]
async fn a_release_leaves_the_session_as_it_was() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap();
    let b = s.acquire(&id(), "inv-b").await.unwrap();
    s.release(&b.lease).await.unwrap();
    let snap = s.read(&id()).await.unwrap().unwrap();
    assert_eq!(
        (snap.state.version, snap.messages.len(), snap.running),
        (1, 2, false)
    );
}

#[tokio::test]
async fn a_session_expires_its_ttl_after_the_last_commit() {
    let redis = RedisServer::start();
    let o = options(Duration::from_secs(1), Duration::from_secs(5));
    let s = sessions_at(&redis.url(), o, Duration::from_secs(1));
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap();
    let snap = s.read(&id()).await.unwrap().unwrap();
    assert!(snap.expires_in.unwrap() <= Duration::from_secs(1));
    assert!(
        eventually(Duration::from_secs(3), async || s
            .read(&id())
            .await
            .unwrap()
            .is_none())
        .await,
        "still there after 3 s"
    );
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
    let again = s.acquire(&id(), "inv-b").await.unwrap();
    assert_eq!((again.state.version, again.messages.len()), (0, 0));
}

#[tokio::test]
async fn delete_refuses_a_held_session_and_names_an_unknown_one() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    assert!(matches!(s.delete(&id()).await, Err(SessionError::NotFound)));
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    assert!(matches!(
        s.delete(&id()).await,
        Err(SessionError::Busy { .. })
    ));
    s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap();
    s.delete(&id()).await.unwrap();
    assert!(s.read(&id()).await.unwrap().is_none());
    assert!(redis.keys().is_empty(), "{:?}", redis.keys());
}

#[tokio::test]
async fn commits_past_max_messages_drop_the_oldest_whole_turns() {
    let redis = RedisServer::start();
    let s = sessions(&redis);
    for q in ["q1", "q2", "q3"] {
        let a = s.acquire(&id(), q).await.unwrap();
        s.commit(&a.lease, &turn(&a, q, 4)).await.unwrap();
    }
    let snap = s.read(&id()).await.unwrap().unwrap();
    assert_eq!(snap.messages[0], Message::user_text("q2"));
    assert_eq!(
        (
            snap.messages.len(),
            snap.state.version,
            snap.state.meta.turns
        ),
        (4, 3, 3)
    );
}

#[tokio::test]
async fn a_store_that_is_down_answers_unavailable_fast() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = options(Duration::from_secs(60), Duration::from_secs(5));
    let s = sessions_at(
        &format!("redis://127.0.0.1:{port}/0"),
        o,
        Duration::from_secs(2),
    );
    let started = Instant::now();
    let e = s.acquire(&id(), "inv-a").await.unwrap_err();
    assert_eq!(e.code(), "session_store_unavailable", "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_paused_store_times_out_and_a_resumed_or_restarted_one_serves_again() {
    let mut redis = RedisServer::start();
    let s = sessions(&redis);
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap();
    redis.pause();
    let started = Instant::now();
    let e = s.read(&id()).await.unwrap_err();
    assert!(matches!(e, SessionError::Timeout(_)), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    redis.resume();
    assert!(
        eventually(Duration::from_secs(5), async || s
            .read(&id())
            .await
            .is_ok_and(|r| r.is_some()))
        .await,
        "the session did not come back after SIGCONT"
    );
    redis.restart();
    // The new server is empty (no persistence); the client reconnects on its own.
    assert!(
        eventually(Duration::from_secs(5), async || s
            .read(&id())
            .await
            .is_ok_and(|r| r.is_none()))
        .await,
        "no answer from the restarted server"
    );
    let b = s.acquire(&id(), "inv-b").await.unwrap();
    assert_eq!(b.state.version, 0);
}

#[tokio::test]
async fn an_acl_user_limited_to_agentry_keys_can_use_the_store_and_a_wrong_password_is_refused() {
    let redis = RedisServer::start_with(&[
        "--user",
        "agentry",
        "on",
        ">pw-1",
        "~agentry:*",
        "+@all",
        "--user",
        "elsewhere",
        "on",
        ">pw-2",
        "~other:*",
        "+@all",
    ]);
    let o = || options(Duration::from_secs(60), Duration::from_secs(5));
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}/0", redis.port);
    let s = sessions_at(&url("agentry", "pw-1"), o(), Duration::from_secs(1));
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    assert_eq!(s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap(), 1);
    assert_eq!(s.read(&id()).await.unwrap().unwrap().messages.len(), 2);

    let wrong = sessions_at(&url("agentry", "not-it"), o(), Duration::from_secs(1));
    let e = wrong.acquire(&id(), "inv-b").await.unwrap_err();
    let chain = agentry_runtime::error_chain(&e);
    assert_eq!(e.code(), "session_store_unavailable", "{chain}");
    assert!(chain.contains("authentication failed"), "{chain}");
    assert!(
        !chain.contains("not-it"),
        "the password is in the error: {chain}"
    );

    // A user whose keys are elsewhere is refused by the store (NOPERM), not half served.
    let other = sessions_at(&url("elsewhere", "pw-2"), o(), Duration::from_secs(1));
    let e = other.acquire(&id(), "inv-c").await.unwrap_err();
    let chain = agentry_runtime::error_chain(&e);
    assert!(matches!(e, SessionError::Refused(_)), "{chain}");
    assert!(
        chain.contains("NOPERM") || chain.contains("permission"),
        "{chain}"
    );
}

#[tokio::test]
async fn a_tls_store_is_used_with_its_private_ca_and_refused_without_it() {
    let (redis, ca) = RedisServer::start_tls();
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let o = || options(Duration::from_secs(60), Duration::from_secs(5));
    let t = Duration::from_secs(1);
    let store = Store::connect_lazy(&url, Some(&ca), t, StoreMetrics::default()).unwrap();
    let s = Sessions::new(store, "demo", "weather", o());
    let a = s.acquire(&id(), "inv-a").await.unwrap();
    assert_eq!(s.commit(&a.lease, &turn(&a, "q1", 100)).await.unwrap(), 1);
    assert_eq!(s.read(&id()).await.unwrap().unwrap().state.version, 1);

    // The system's roots do not know the test CA; plain text does not speak TLS.
    let untrusted = sessions_at(&url, o(), t);
    let e = untrusted.read(&id()).await.unwrap_err();
    let chain = agentry_runtime::error_chain(&e);
    assert_eq!(e.code(), "session_store_unavailable", "{chain}");
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    let plain = sessions_at(&format!("redis://127.0.0.1:{}/0", redis.port), o(), t);
    assert_eq!(
        plain.read(&id()).await.unwrap_err().code(),
        "session_store_unavailable"
    );
}

#[tokio::test]
async fn an_acquire_whose_answer_never_came_leaves_the_session_free() {
    let redis = RedisServer::start();
    let replica_a = sessions(&redis);
    let replica_b = sessions(&redis);
    let (one, two) = (
        SessionId::parse("one").unwrap(),
        SessionId::parse("two").unwrap(),
    );
    replica_a.read(&one).await.unwrap();
    // The store runs both acquires once it is resumed, after replica A gave up on them.
    redis.pause();
    for id in [&one, &two] {
        let e = replica_a.acquire(id, "lost").await.unwrap_err();
        assert_eq!(e.code(), "session_store_unavailable", "{e:?}");
    }
    redis.resume();
    // A can take the session again at once (its abandoned lease was given back or is taken
    // over)...
    let again = replica_a.acquire(&one, "retry").await.unwrap();
    assert_eq!(again.state.version, 0);
    // ...and the other is given back well before its 5 s lease would run out.
    let started = Instant::now();
    let mut got = None;
    assert!(
        eventually(Duration::from_secs(3), async || {
            got = replica_b.acquire(&two, "b").await.ok();
            got.is_some()
        })
        .await,
        "session two stayed busy"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}
