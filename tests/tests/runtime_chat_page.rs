//! The chat page at `GET /`: its headers and self-containment over plain HTTP, and the page
//! itself in headless Chromium (Debian's `chromium` driven by `playwright-core`,
//! `tests/js/chat_page.js`) against the real runtime in-process, the Bedrock imitation
//! scripting the model and a slow http tool: messages typed and sent through the page, the
//! answer streamed in, the tool call shown with its status and duration, follow-ups carrying the
//! earlier turns (checked on what reached the model), errors and a limit stop shown, a
//! screenshot taken. With memory (a real redis-server), the conversation is a session: tool
//! calls that need approval approved and denied with the page's buttons, and a reload bringing
//! the conversation back, a call still waiting included (`tests/js/chat_page_sessions.js`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/runtime_fixtures.rs"]
mod fixtures;
#[path = "support/session_fixtures.rs"]
mod sessions;

use std::time::Duration;

use agentry_tests::bedrock::{Block, Captured, FakeBedrock, Script, Turn};
use agentry_tests::node::{self, NodeModules};
use agentry_tests::redis::RedisServer;
use agentry_tests::runtime::{self, ToolBehaviour, ToolServer};
use fixtures::{config, http_tool, limits, setup, song};
use serde_json::{Value, json};

const ANSWER: &str = "The most popular song on WZPZ is Elemental Hotel by 8 Storey Hike.";
const FOLLOW_UP: &str = "It is sung by 8 Storey Hike.";
const REFUSAL: &str = "The model refused this prompt for the test.";

async fn page() -> (u16, reqwest::header::HeaderMap, String) {
    let (_fake, _tools, rt) = setup(&[("/top_song", song())], limits()).await;
    let r = reqwest::get(format!("{}/", rt.url)).await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_page_is_html_named_after_the_agent_with_a_strict_policy() {
    let (status, h, body) = page().await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "cache-control"), "no-store");
    let csp = header(&h, "content-security-policy");
    for want in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(want), "{want} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(body.contains("<h1 id=\"agent\">radio</h1>"), "{body}");
}

/// Every URL the page would load from: `src`/`href`/`action` attribute values, CSS `url(...)`
/// and `@import`, and any absolute URL anywhere in the text.
fn outside_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href=", "action=", "url(", "@import"] {
        for (at, _) in lower.match_indices(attr) {
            let value = lower[at + attr.len()..]
                .trim_start_matches(['"', '\'', ' '])
                .to_string();
            if value.starts_with("//") || value.starts_with("http") || value.starts_with("data:") {
                found.push(value.chars().take(60).collect());
            }
        }
    }
    found.extend(
        lower
            .match_indices("://")
            .map(|(at, _)| lower[at.saturating_sub(10)..(at + 30).min(lower.len())].to_string()),
    );
    found
}

#[test]
fn the_reference_finder_sees_scripts_styles_and_links_from_elsewhere() {
    let bad = r#"<script src="https://cdn.example/x.js"></script><link href='//fonts.example/f'>
        <style>@import "http://x/y.css"; body { background: url( data:image/png;base64,AA) }</style>"#;
    assert_eq!(
        outside_references(bad).len(),
        6,
        "{:?}",
        outside_references(bad)
    );
}

#[tokio::test]
async fn the_page_loads_nothing_from_anywhere_else() {
    let (_, _, body) = page().await;
    assert_eq!(outside_references(&body), Vec::<String>::new());
    assert!(body.contains("<script>") && body.contains("<style>"));
}

fn turns(c: &Captured) -> Vec<(String, String)> {
    c.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text: String = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect();
            (m["role"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

fn said(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_through_the_page_in_headless_chromium() {
    let chromium = node::chromium().unwrap_or_else(|e| panic!("{e}"));
    let modules = tokio::task::spawn_blocking(|| NodeModules::ensure("browser"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the browser test packages: {e}"));
    // One concurrency slot, so another client holding it makes the page's next send a 429.
    let mut limits = limits();
    limits.max_concurrent_invocations = 1;
    let slow_song = ToolBehaviour::Slow(
        Duration::from_millis(1200),
        json!({"song": "Elemental Hotel", "artist": "8 Storey Hike"}),
    );
    let (fake, tools, rt) = setup(&[("/top_song", slow_song)], limits).await;
    let mut call = Turn::tools(&[("t1", "top_song", json!({"sign": "WZPZ"}))]);
    call.blocks
        .insert(0, Block::Text("Let me look that up.".into()));
    let cut_short = Turn {
        blocks: vec![Block::Text("The list is long: first".into())],
        stop_reason: "max_tokens".into(),
        usage: (10, 1024),
    };
    fake.push([
        Script::Turn(call),
        Script::Turn(Turn::text(ANSWER)),
        Script::Turn(Turn::text(FOLLOW_UP)),
        Script::Error(400, "ValidationException".into(), REFUSAL.into()),
        Script::Turn(cut_short),
        // Long enough for the page's next send to find the slot still taken.
        Script::Delay(
            Duration::from_secs(3),
            Box::new(Script::Turn(Turn::text("late"))),
        ),
        Script::Turn(Turn::text("A fresh start.")),
    ]);
    let questions = [
        "What is the most popular song on WZPZ?",
        "And who\nsings it?",
        "Make it fail.",
        "List every song.",
        "Are you busy?",
        "Hello again.",
    ];
    let screenshot =
        std::env::temp_dir().join(format!("agentry-chat-page-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&screenshot);
    let spec = json!({
        "url": format!("{}/", rt.url),
        "chromium": chromium,
        "screenshot": screenshot,
        "questions": questions,
        "timeoutMs": 15000,
    });
    let script = node::js_dir().join("chat_page.js");
    let seen = node::run_json(modules.command(&script), &spec, Duration::from_secs(120)).await;
    assert!(
        seen.get("failed").is_none(),
        "the browser script failed: {seen:#}"
    );

    assert_eq!(
        (&seen["status"], &seen["agent"]),
        (&json!(200), &json!("radio")),
        "{seen}"
    );
    assert!(
        seen["title"].as_str().unwrap().starts_with("radio"),
        "{seen}"
    );
    assert_eq!(
        (&seen["focused"], &seen["label"]),
        (&json!("input"), &json!("Message to radio"))
    );
    let console = strings(&seen["console"]);
    assert!(
        !console
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "the policy blocked something: {console:?}"
    );
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");

    // Streaming: the narration was on the page while the tool still ran, the answer not yet.
    assert_eq!(
        seen["whileRunning"]["tool"], "tool top_song: running…",
        "{seen}"
    );
    assert_eq!(
        strings(&seen["whileRunning"]["texts"]),
        ["Let me look that up."]
    );
    let t = &seen["turns"];
    assert_eq!(
        strings(&t[0]["texts"]),
        ["Let me look that up.", ANSWER],
        "{seen}"
    );
    let tool = &t[0]["tools"][0];
    assert_eq!(
        (&tool["name"], &tool["status"]),
        (&json!("top_song"), &json!("success")),
        "{seen}"
    );
    let ms: u64 = tool["text"]
        .as_str()
        .unwrap()
        .strip_prefix("tool top_song: success in ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {tool}"));
    assert!((1200..10_000).contains(&ms), "the slow tool took {ms} ms");
    assert!(
        strings(&t[0]["meta"])[0].starts_with("end_turn · 2 model call(s) · 30 tokens in"),
        "{seen}"
    );
    assert_eq!(strings(&t[1]["texts"]), [FOLLOW_UP], "{seen}");
    // The model error, the limit stop and the HTTP error are each shown as such.
    let error = strings(&t[2]["errors"]).join(" ");
    assert!(
        error.contains(REFUSAL) && error.contains("not kept"),
        "{seen}"
    );
    assert_eq!(strings(&t[2]["texts"]), Vec::<String>::new());
    assert_eq!(
        strings(&t[3]["texts"]),
        ["The list is long: first"],
        "{seen}"
    );
    assert!(
        strings(&t[3]["notes"])
            .contains(&"Stopped: the reply reached the model's maxTokens.".to_string()),
        "{seen}"
    );
    assert!(
        strings(&t[3]["meta"])[0].starts_with("max_tokens"),
        "{seen}"
    );
    assert_eq!(seen["blockerStatus"], 200, "{seen}");
    let busy = strings(&t[4]["errors"]).join(" ");
    assert!(
        busy.starts_with("HTTP 429 too_many_requests: this agent is serving its limit of 1")
            && busy.contains("(retry in 1 s)"),
        "{seen}"
    );
    assert_eq!(seen["blockerEnded"], true, "{seen}");
    assert_eq!(
        (&seen["turnsAfterNew"], &seen["focusedAfterNew"]),
        (&json!(0), &json!("input"))
    );
    assert_eq!(
        strings(&seen["fresh"]["texts"]),
        ["A fresh start."],
        "{seen}"
    );

    // What reached the model: each turn carries the earlier ones, a failed turn is left out,
    // and a new conversation starts from nothing.
    let c = fake.captured();
    assert_eq!(c.len(), 7, "{c:#?}");
    assert!(c.iter().all(|c| c.stream), "the page streams");
    let (q, a) = (questions, [ANSWER, FOLLOW_UP]);
    assert_eq!(turns(&c[0]), said(&[("user", q[0])]));
    assert_eq!(
        turns(&c[2]),
        said(&[("user", q[0]), ("assistant", a[0]), ("user", q[1])])
    );
    let before = [
        ("user", q[0]),
        ("assistant", a[0]),
        ("user", q[1]),
        ("assistant", a[1]),
    ];
    assert_eq!(
        turns(&c[3]),
        said(&[&before[..], &[("user", q[2])]].concat())
    );
    assert_eq!(
        turns(&c[4]),
        said(&[&before[..], &[("user", q[3])]].concat())
    );
    assert_eq!(turns(&c[5]), said(&[("user", "hold the only slot")]));
    assert_eq!(turns(&c[6]), said(&[("user", q[5])]));
    assert_eq!(tools.seen().len(), 1);
    assert_eq!(tools.seen()[0].body, json!({"sign": "WZPZ"}));

    let png =
        std::fs::read(&screenshot).unwrap_or_else(|e| panic!("{}: {e}", screenshot.display()));
    println!(
        "chat page screenshot: {} ({} bytes)",
        screenshot.display(),
        png.len()
    );
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a {}-byte screenshot shows little",
        png.len()
    );
}

/// Every text block of a Converse request's messages, in order.
fn texts(c: &Captured) -> Vec<String> {
    c.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap().iter())
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_memory_the_page_keeps_a_session_and_asks_for_approval_with_buttons() {
    let chromium = node::chromium().unwrap_or_else(|e| panic!("{e}"));
    let modules = tokio::task::spawn_blocking(|| NodeModules::ensure("browser"))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the browser test packages: {e}"));
    let redis = RedisServer::start();
    let tools =
        ToolServer::start(&[("/book", ToolBehaviour::Json(json!({"booked": "table 4"})))]).await;
    let fake = FakeBedrock::start().await.unwrap();
    let mut book = http_tool("book", tools.url("/book"), 5);
    book.approval_required = true;
    let mut cfg = config(vec![book], limits());
    cfg.memory = Some(sessions::memory(600, 100));
    let rt = runtime::start(cfg, &fake, sessions::env(&redis.url())).await;
    fake.push([
        Script::Turn(Turn::tools(&[("t1", "book", json!({"sign": "T4"}))])),
        Script::Turn(Turn::text("Your table is booked.")),
        Script::Turn(Turn::tools(&[("t2", "book", json!({"sign": "T5"}))])),
        Script::Turn(Turn::text("I will not book it.")),
        Script::Turn(Turn::text("We booked one table.")),
        Script::Turn(Turn::tools(&[("t3", "book", json!({"sign": "T6"}))])),
        Script::Turn(Turn::text("Booked again.")),
        Script::Turn(Turn::text("Hello, stranger.")),
    ]);
    let questions = [
        "Book a table for two.",
        "Book another one.",
        "What did we do?",
        "Book one more.",
        "Hello?",
    ];
    let reason = "Not tonight.";
    let screenshot = std::env::temp_dir().join(format!(
        "agentry-chat-page-approvals-{}.png",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&screenshot);
    let spec = json!({
        "url": format!("{}/", rt.url),
        "chromium": chromium,
        "screenshot": screenshot,
        "questions": questions,
        "reason": reason,
        "timeoutMs": 15000,
    });
    let script = node::js_dir().join("chat_page_sessions.js");
    let seen = node::run_json(modules.command(&script), &spec, Duration::from_secs(120)).await;
    assert!(
        seen.get("failed").is_none(),
        "the browser script failed: {seen:#}"
    );
    assert_eq!(seen["pageErrors"], json!([]), "{seen}");
    assert!(
        !strings(&seen["console"])
            .iter()
            .any(|m| m.contains("Content Security Policy")),
        "{seen}"
    );
    assert_eq!(seen["memory"], "on");
    assert!(
        seen["kept"].as_str().unwrap().contains("keeps it"),
        "{seen}"
    );

    // The waiting call is shown with its input; sending is off until it is decided.
    let asked = &seen["asked"];
    assert_eq!(
        asked["approvals"],
        json!([{"name": "book", "id": "t1", "input": "{\n  \"sign\": \"T4\"\n}"}]),
        "{seen}"
    );
    assert!(
        strings(&asked["meta"])[0].starts_with("approval_required · 1 model call(s)"),
        "{seen}"
    );
    assert_eq!(seen["waiting"]["sendDisabled"], true, "{seen}");
    assert_eq!(seen["waiting"]["focused"], "approve", "{seen}");
    assert_eq!(
        seen["waiting"]["status"],
        "Waiting for your decision on book."
    );
    // Approved: the call ran once and the turn went on to the answer.
    assert_eq!(
        seen["approved"]["tools"],
        json!([{"name": "book", "status": "success"}]),
        "{seen}"
    );
    assert_eq!(
        strings(&seen["approved"]["texts"]),
        ["Your table is booked."]
    );
    assert_eq!(seen["afterApproval"]["sendDisabled"], false, "{seen}");
    // Denied: the model read the reason, the tool never saw the call.
    assert_eq!(strings(&seen["denied"]["texts"]), ["I will not book it."]);
    assert_eq!(
        strings(&seen["decisions"]),
        ["Approved.", &format!("Denied: {reason}")]
    );
    // The reload brought the text of the conversation back from the session.
    let restored = &seen["restored"];
    assert_eq!(strings(&restored["user"]), &questions[..3], "{seen}");
    assert_eq!(
        strings(&restored["agent"]),
        [
            "Your table is booked.",
            "I will not book it.",
            "We booked one table."
        ]
    );
    assert_eq!(restored["status"], "Conversation restored (3 turn(s)).");
    // A call waiting across a reload, decided on the restored page.
    assert_eq!(seen["waitingAfterReload"]["sendDisabled"], true, "{seen}");
    // The waiting turn joins the messages when it ends: its calls stand for it meanwhile.
    assert_eq!(strings(&seen["restoredWaiting"]["user"]), &questions[..3]);
    assert_eq!(seen["restoredWaiting"]["approvals"], 1);
    assert_eq!(
        seen["approvedAfterReload"]["tools"],
        json!([{"name": "book", "status": "success"}]),
        "{seen}"
    );
    assert_eq!(
        strings(&seen["approvedAfterReload"]["texts"]),
        ["Booked again."]
    );
    let (before, after) = (
        strings(&seen["sessions"]["before"]),
        strings(&seen["sessions"]["after"]),
    );
    assert_eq!((before.len(), after.len()), (1, 1), "{seen}");
    assert_ne!(before, after, "a new conversation is a new session");
    assert!(before[0].starts_with("chat-") && before[0].len() == 37);

    // What reached the model and the tool.
    let c = fake.captured();
    assert_eq!(c.len(), 8, "{c:#?}");
    assert_eq!(texts(&c[0]), [questions[0]]);
    assert_eq!(
        sessions::results(&c[1].body),
        [(
            "t1".into(),
            "success".into(),
            r#"{"booked":"table 4"}"#.into()
        )]
    );
    assert_eq!(
        sessions::results(&c[3].body),
        [(
            "t2".into(),
            "error".into(),
            format!("a person denied this call to tool book; it was not run. Reason: {reason}")
        )]
    );
    assert_eq!(
        texts(&c[4]),
        [
            questions[0],
            "Your table is booked.",
            questions[1],
            "I will not book it.",
            questions[2]
        ]
    );
    assert_eq!(sessions::results(&c[6].body)[0].0, "t3");
    assert_eq!(texts(&c[7]), [questions[4]], "the new conversation");
    let booked: Vec<Value> = tools.seen().iter().map(|r| r.body.clone()).collect();
    assert_eq!(booked, [json!({"sign": "T4"}), json!({"sign": "T6"})]);

    // The store holds the first conversation, whole.
    let (status, held, _) = sessions::send(
        reqwest::Method::GET,
        format!("{}/v1/sessions/{}", rt.url, before[0]),
        None,
    )
    .await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(
        (&held["turns"], &held["pendingApproval"]),
        (&json!(4), &Value::Null)
    );

    let png =
        std::fs::read(&screenshot).unwrap_or_else(|e| panic!("{}: {e}", screenshot.display()));
    println!(
        "chat page screenshot with approvals: {} ({} bytes)",
        screenshot.display(),
        png.len()
    );
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
}
