//! An MCP `tools/call` result as a Bedrock tool result. Works on the result's JSON form (as the
//! MCP specification writes it), so it is tested against the specification's own examples:
//!
//! - `text` blocks become text; `structuredContent` becomes one JSON block. What only repeats
//!   the other is dropped, so Claude does not read it twice: a text block that is the structured
//!   content serialized (as the specification advises servers to send), or a structured
//!   `{"result": value}` (how SDKs wrap a plain return value) whose value a text block says;
//! - `resource_link` and embedded `resource` blocks become text naming the URI (and the text of
//!   a text resource); images, audio and binary resources are described, not sent;
//! - `isError: true` makes an error result with the same content.

use serde_json::{Value, json};

use crate::conversation::{ResultContent, ResultStatus, ToolResult};
use crate::tools::MAX_RESPONSE_BYTES;

/// Converts the JSON of a `CallToolResult`.
pub fn convert(id: &str, result: &Value) -> ToolResult {
    let mut structured = result
        .get("structuredContent")
        .filter(|v| !v.is_null())
        .cloned();
    let texts: Vec<String> = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(block_text)
        .collect();
    // SDKs wrap a plain return value as `{"result": value}` beside its text: the text says it.
    if let Some(Value::Object(o)) = &structured
        && o.len() == 1
        && let Some(v) = o.get("result")
        && texts.iter().any(|t| *t == plain(v))
    {
        structured = None;
    }
    let mut content = Vec::new();
    let mut budget = MAX_RESPONSE_BYTES;
    for text in texts {
        if let Some(s) = &structured
            && serde_json::from_str::<Value>(&text).ok().as_ref() == Some(s)
        {
            continue;
        }
        content.push(ResultContent::Text(capped(text, &mut budget)));
    }
    if let Some(s) = structured {
        // Bedrock takes a JSON object as a json block; anything else is wrapped in one.
        content.push(ResultContent::Json(match s {
            Value::Object(_) => s,
            other => json!({ "result": other }),
        }));
    }
    if content.is_empty() {
        content.push(ResultContent::Text("(the tool returned no content)".into()));
    }
    let error = result.get("isError").and_then(Value::as_bool) == Some(true);
    ToolResult {
        tool_use_id: id.into(),
        content,
        status: Some(if error {
            ResultStatus::Error
        } else {
            ResultStatus::Success
        }),
    }
}

/// A value as a server writes it in text: strings as they are, the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn capped(mut text: String, budget: &mut usize) -> String {
    if text.len() <= *budget {
        *budget -= text.len();
        return text;
    }
    let mut cut = *budget;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    *budget = 0;
    text.push_str(&format!("\n[response cut at {MAX_RESPONSE_BYTES} bytes]"));
    text
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The text a content block shows Claude; `None` for a block of no known type.
fn block_text(block: &Value) -> Option<String> {
    let mime = |v: &Value| {
        str_of(v, "mimeType")
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    };
    // Decoded size of base64 data, without decoding it.
    let size = |v: &Value, key: &str| {
        str_of(v, key).map_or(0, |d| {
            (d.len() / 4 * 3).saturating_sub(d.bytes().rev().take_while(|b| *b == b'=').count())
        })
    };
    match str_of(block, "type")? {
        "text" => str_of(block, "text").map(String::from),
        "resource_link" => {
            let uri = str_of(block, "uri")?;
            let mut text = format!("resource link: {uri}{}", mime(block));
            if let Some(name) = str_of(block, "title").or_else(|| str_of(block, "name")) {
                text.push_str(&format!(", {name}"));
            }
            if let Some(d) = str_of(block, "description") {
                text.push_str(&format!(": {d}"));
            }
            Some(text)
        }
        "resource" => {
            let r = block.get("resource")?;
            let uri = str_of(r, "uri")?;
            Some(match str_of(r, "text") {
                Some(text) => format!("resource {uri}{}:\n{text}", mime(r)),
                None => format!(
                    "resource {uri}{}: {} bytes of binary data, not shown",
                    mime(r),
                    size(r, "blob")
                ),
            })
        }
        kind @ ("image" | "audio") => Some(format!(
            "[{kind}{}, {} bytes, not shown]",
            mime(block),
            size(block, "data")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The result examples of the MCP specification (server/tools, "Tool Result").
    #[test]
    fn text_content_becomes_text() {
        let r = convert(
            "t1",
            &json!({"content": [{"type": "text", "text": "Current weather in New York:\nTemperature: 72°F\nConditions: Partly cloudy"}], "isError": false}),
        );
        assert_eq!(r.status, Some(ResultStatus::Success));
        assert_eq!(
            r.content,
            [ResultContent::Text(
                "Current weather in New York:\nTemperature: 72°F\nConditions: Partly cloudy".into()
            )]
        );
    }

    #[test]
    fn structured_content_becomes_json_and_its_serialized_copy_is_not_repeated() {
        let r = convert(
            "t1",
            &json!({
                "content": [{"type": "text", "text": "{\"temperature\": 22.5, \"conditions\": \"Partly cloudy\", \"humidity\": 65}"}],
                "structuredContent": {"temperature": 22.5, "conditions": "Partly cloudy", "humidity": 65}
            }),
        );
        assert_eq!(
            r.content,
            [ResultContent::Json(
                json!({"temperature": 22.5, "conditions": "Partly cloudy", "humidity": 65})
            )]
        );
        // Text that says something else is kept beside it; a non-object is wrapped.
        let r = convert(
            "t1",
            &json!({"content": [{"type": "text", "text": "42 is the answer"}], "structuredContent": 42}),
        );
        assert_eq!(
            r.content,
            [
                ResultContent::Text("42 is the answer".into()),
                ResultContent::Json(json!({"result": 42}))
            ]
        );
    }

    #[test]
    fn a_wrapped_plain_value_that_the_text_says_is_not_repeated() {
        // What the Python SDK sends for a tool returning a str or a float.
        let r = convert(
            "t1",
            &json!({"content": [{"type": "text", "text": "echo: hi"}], "structuredContent": {"result": "echo: hi"}}),
        );
        assert_eq!(r.content, [ResultContent::Text("echo: hi".into())]);
        let r = convert(
            "t1",
            &json!({"content": [{"type": "text", "text": "5.5"}], "structuredContent": {"result": 5.5}}),
        );
        assert_eq!(r.content, [ResultContent::Text("5.5".into())]);
    }

    #[test]
    fn resource_links_and_embedded_resources_name_their_uri() {
        let r = convert(
            "t1",
            &json!({"content": [
                {"type": "resource_link", "uri": "file:///project/src/main.rs", "name": "main.rs", "description": "Primary application entry point", "mimeType": "text/x-rust"},
                {"type": "resource", "resource": {"uri": "file:///project/README.md", "mimeType": "text/markdown", "text": "# Project"}},
                {"type": "resource", "resource": {"uri": "file:///logo.png", "mimeType": "image/png", "blob": "iVBORw0KGgo="}},
                {"type": "image", "data": "base64-encoded-data", "mimeType": "image/png"}
            ]}),
        );
        let texts: Vec<String> = r
            .content
            .iter()
            .map(|c| match c {
                ResultContent::Text(t) => t.clone(),
                ResultContent::Json(j) => j.to_string(),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "resource link: file:///project/src/main.rs (text/x-rust), main.rs: Primary application entry point",
                "resource file:///project/README.md (text/markdown):\n# Project",
                "resource file:///logo.png (image/png): 8 bytes of binary data, not shown",
                "[image (image/png), 12 bytes, not shown]",
            ]
        );
    }

    #[test]
    fn is_error_makes_an_error_result_with_the_servers_message() {
        let r = convert(
            "t9",
            &json!({"content": [{"type": "text", "text": "Failed to fetch weather data: API rate limit exceeded"}], "isError": true}),
        );
        assert_eq!(r.tool_use_id, "t9");
        assert!(r.is_error());
        assert_eq!(
            r.content,
            [ResultContent::Text(
                "Failed to fetch weather data: API rate limit exceeded".into()
            )]
        );
    }

    #[test]
    fn an_empty_result_still_says_something_and_huge_text_is_cut() {
        let r = convert("t1", &json!({"content": []}));
        assert_eq!(
            r.content,
            [ResultContent::Text("(the tool returned no content)".into())]
        );
        let big = "é".repeat(MAX_RESPONSE_BYTES);
        let r = convert("t1", &json!({"content": [{"type": "text", "text": big}]}));
        let ResultContent::Text(t) = &r.content[0] else {
            panic!()
        };
        assert!(t.len() < MAX_RESPONSE_BYTES + 100);
        assert!(t.ends_with(&format!("[response cut at {MAX_RESPONSE_BYTES} bytes]")));
    }
}
