//! `GET /`: a chat page for trying the Agent in a browser (`kubectl port-forward` and open
//! it). One self-contained document (`page.html`, inline CSS and JS, no external assets) that
//! speaks `POST /v1/invoke` with Server-Sent Events. With memory the conversation is a session
//! (its id kept in the tab's `sessionStorage`, restored after a reload with `GET
//! /v1/sessions/{id}`), and a turn that stops with `approval_required` shows Approve and Deny
//! buttons for each waiting call, whose decisions go to `POST /v1/sessions/{id}/approvals`;
//! without, the page keeps the conversation and sends it each time. The Agent's name and model are written
//! into it HTML-escaped; its Content-Security-Policy allows exactly its own inline script and
//! style by their SHA-256 hashes (no `unsafe-inline`, no nonce to generate) and connections to
//! this origin only.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;

const TEMPLATE: &str = include_str!("page.html");

/// The page's Content-Security-Policy.
pub static CSP: LazyLock<String> = LazyLock::new(|| csp(TEMPLATE));

/// The text between `<tag>` and `</tag>`, the first such element (what a browser hashes).
fn inline<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    html.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map_or("", |(inner, _)| inner)
}

fn sha256_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        aws_smithy_types::base64::encode(Sha256::digest(text.as_bytes()))
    )
}

fn csp(html: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(inline(html, "script")),
        sha256_source(inline(html, "style"))
    )
}

/// `&`, `<`, `>`, `"` and `'` as character references.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for an Agent. The placeholders sit outside the script and the style, so the hashes
/// in [`CSP`] hold whatever the name.
fn render(agent: &str, model: &str, memory: bool) -> String {
    let (flag, kept) = if memory {
        (
            "on",
            "The Agent keeps this conversation (a session): reloading the page keeps it.",
        )
    } else {
        (
            "off",
            "This page keeps the conversation: reloading the page forgets it.",
        )
    };
    TEMPLATE
        .replace("{{AGENT_NAME}}", &escape_html(agent))
        .replace("{{MODEL_ID}}", &escape_html(model))
        .replace("{{MEMORY}}", flag)
        .replace("{{KEPT}}", kept)
}

/// The handler.
pub async fn handler(State(s): State<AppState>) -> Response {
    let html = render(
        &s.rt.config.agent.name,
        &s.rt.config.model.id,
        s.rt.sessions.is_some(),
    );
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_hashes_the_inline_script_and_style_and_nothing_else_runs() {
        let script = inline(TEMPLATE, "script");
        let style = inline(TEMPLATE, "style");
        assert!(script.contains("v1/invoke") && style.contains("body"));
        assert!(CSP.contains(&sha256_source(script)), "{}", *CSP);
        assert!(CSP.contains(&sha256_source(style)), "{}", *CSP);
        assert!(!CSP.contains("unsafe"), "{}", *CSP);
        // One script and one style element: a second would be blocked by the policy.
        assert_eq!(TEMPLATE.matches("<script").count(), 1);
        assert_eq!(TEMPLATE.matches("<style").count(), 1);
        assert!(
            !TEMPLATE.contains(" style=\""),
            "inline style attributes are blocked"
        );
    }

    #[test]
    fn a_known_hash_matches_the_one_browsers_compute() {
        // From the CSP3 specification's example: sha256 of `alert('Hello, world.');`.
        assert_eq!(
            sha256_source("alert('Hello, world.');"),
            "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
        );
    }

    #[test]
    fn the_agent_name_is_escaped_and_the_script_keeps_its_hash() {
        let page = render("<b>x</b>&\"'", "m<1>", true);
        assert!(
            page.contains("&lt;b&gt;x&lt;/b&gt;&amp;&quot;&#39;"),
            "{page}"
        );
        assert!(page.contains("m&lt;1&gt;"));
        assert!(!page.contains("<b>x"));
        assert_eq!(csp(&page), *CSP);
        assert!(!inline(TEMPLATE, "script").contains("{{"));
        assert!(!inline(TEMPLATE, "style").contains("{{"));
        assert!(!page.contains("{{"), "a placeholder is left: {page}");
    }

    #[test]
    fn the_page_says_who_keeps_the_conversation() {
        let with = render("a", "m", true);
        assert!(with.contains(r#"<body data-memory="on">"#));
        assert!(with.contains("reloading the page keeps it"));
        let without = render("a", "m", false);
        assert!(without.contains(r#"<body data-memory="off">"#));
        assert!(without.contains("reloading the page forgets it"));
    }
}
