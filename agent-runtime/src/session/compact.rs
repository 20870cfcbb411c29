//! Context compaction, without I/O: whether a session's history plus the new input passes
//! `memory.maxContextTokens`, which oldest whole turns a summary replaces, the summary request,
//! and how a stored summary rides at the front of the history the model sees.
//!
//! Tokens are *estimated*, cheaply: the history weighs what the model reported for the last
//! call of the session's last saved turn (its whole prompt, cached part included, plus the
//! reply: [`super::record::Meta::context_tokens`]); new text weighs one token per
//! [`BYTES_PER_TOKEN`] bytes. A session saved before the count existed is estimated from its
//! stored JSON the same way.

use crate::conversation::{Block, Message, ResultContent, ResultStatus, Role};

use super::record;
use super::trim::is_turn_start;

/// The instruction of the summary call, sent before the transcript of the turns it replaces.
/// The README quotes it verbatim.
pub const PROMPT: &str = "You are compacting the history of a conversation between a user and an AI assistant so that it fits the model's context. Between <transcript> tags below are its oldest turns, tool calls and their results included; it may begin with the summary of an earlier compaction. Write a summary that the assistant can continue the conversation from instead of the transcript: the user's goals, preferences and instructions; facts, figures and decisions established; which tools were called and what they returned that still matters; open questions and commitments. Be concise but keep names, numbers and identifiers exact. Write plain text in the language of the conversation, without a preamble, and do not answer or continue the conversation.";

/// What opens the summary block in the first kept user message.
pub const SUMMARY_OPEN: &str = "<conversation_summary>";
/// What closes it.
pub const SUMMARY_CLOSE: &str = "</conversation_summary>";

/// The estimate's ratio: Claude's tokenizer averages about 3.5–4 bytes of English per token
/// (fewer for code, JSON and other languages, so this errs low on those).
pub const BYTES_PER_TOKEN: u64 = 4;

/// What to summarise, once one more turn would pass the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// History plus input fit: nothing to do.
    Fits,
    /// Summarise the first `summarize` messages (whole turns) and keep the rest verbatim.
    Compact {
        /// Messages the summary replaces, from the front.
        summarize: usize,
    },
    /// Over the limit, but the history is one turn: the newest turn is always kept verbatim,
    /// so there is nothing older to summarise.
    NewestTurnOnly,
}

/// The estimated tokens of `text`.
pub fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(BYTES_PER_TOKEN)
}

/// The estimated tokens of a message, from its stored form.
fn message_bytes(m: &Message) -> u64 {
    record::encode(m).len() as u64
}

/// What `history` weighs: `recorded` (the model's count for the last saved turn) when there
/// is one, else the estimate of its stored JSON.
pub fn history_tokens(recorded: u64, history: &[Message]) -> u64 {
    if recorded > 0 || history.is_empty() {
        return recorded;
    }
    history
        .iter()
        .map(message_bytes)
        .sum::<u64>()
        .div_ceil(BYTES_PER_TOKEN)
}

/// Whether and where to compact `history` (weighing `history_tokens`) before an input of
/// `input_tokens`, under `max` tokens.
///
/// Past the limit, the oldest whole turns are summarised until what stays verbatim plus the
/// input is at most half of `max` (a summary is expected to be small), so that the next few
/// turns fit without another summary call. A message's share of `history_tokens` is its share
/// of the stored bytes. The newest turn always stays verbatim, even when that keeps more.
pub fn plan(history: &[Message], history_tokens: u64, input_tokens: u64, max: u64) -> Plan {
    if history_tokens.saturating_add(input_tokens) <= max {
        return Plan::Fits;
    }
    let starts: Vec<usize> = (1..history.len())
        .filter(|&i| is_turn_start(&history[i]))
        .collect();
    let Some(&newest) = starts.last() else {
        return Plan::NewestTurnOnly;
    };
    let budget = (max / 2).saturating_sub(input_tokens);
    let bytes: Vec<u64> = history.iter().map(message_bytes).collect();
    let total = bytes.iter().sum::<u64>().max(1);
    let kept_tokens = |from: usize| {
        let kept: u64 = bytes[from..].iter().sum();
        // u128: tokens times bytes can pass u64 for a history of many megabytes.
        (u128::from(history_tokens) * u128::from(kept) / u128::from(total)) as u64
    };
    let summarize = starts
        .iter()
        .copied()
        .find(|&i| kept_tokens(i) <= budget)
        .unwrap_or(newest);
    Plan::Compact { summarize }
}

/// `messages` as the model sees them: the stored `summary`, if any, as the first block of the
/// first message. Every stored history starts with a turn's user message (compaction and
/// trimming cut only at turn starts), so roles still alternate and nothing is invented for
/// the assistant.
pub fn with_summary(summary: Option<&str>, mut messages: Vec<Message>) -> Vec<Message> {
    if let (Some(s), Some(first)) = (summary, messages.first_mut())
        && first.role == Role::User
    {
        first.content.insert(
            0,
            Block::Text(format!("{SUMMARY_OPEN}\n{s}\n{SUMMARY_CLOSE}")),
        );
    }
    messages
}

/// The summary call's one user message: [`PROMPT`], then the transcript of `old`.
pub fn request(old: &[Message]) -> Vec<Message> {
    let text = format!("{PROMPT}\n\n<transcript>\n{}</transcript>", transcript(old));
    vec![Message::user_text(&text)]
}

/// `messages` as plain text, one line per block: tool calls and results become text, so the
/// summary call needs no tool configuration (Converse refuses toolUse blocks without one) and
/// the model cannot call a tool instead of summarising.
pub fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        for b in &m.content {
            match b {
                Block::Text(t) => out.push_str(&format!("[{who}] {t}\n")),
                Block::ToolUse(u) => out.push_str(&format!(
                    "[assistant calls tool {} (call {})] {}\n",
                    u.name, u.tool_use_id, u.input
                )),
                Block::ToolResult(r) => {
                    let status = match r.status {
                        Some(ResultStatus::Error) => "error",
                        _ => "success",
                    };
                    let body: Vec<String> = r
                        .content
                        .iter()
                        .map(|c| match c {
                            ResultContent::Text(t) => t.clone(),
                            ResultContent::Json(v) => v.to_string(),
                        })
                        .collect();
                    out.push_str(&format!(
                        "[tool result of call {}, {status}] {}\n",
                        r.tool_use_id,
                        body.join(" ")
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ToolResult, ToolUse, check};
    use proptest::prelude::*;

    fn answer(t: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::Text(t.into())],
        }
    }
    fn asks(id: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse(ToolUse {
                tool_use_id: id.into(),
                name: "top_song".into(),
                input: serde_json::json!({"sign": "WZPZ"}),
            })],
        }
    }
    fn results(id: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Block::ToolResult(ToolResult {
                tool_use_id: id.into(),
                content: vec![ResultContent::Json(
                    serde_json::json!({"song": "Elemental Hotel"}),
                )],
                status: Some(ResultStatus::Success),
            })],
        }
    }

    /// Whole turns of about the same size; turn `t` has `rounds[t]` tool rounds.
    fn conversation(rounds: &[usize]) -> Vec<Message> {
        let mut out = vec![];
        for (t, n) in rounds.iter().enumerate() {
            out.push(Message::user_text(&format!("question {t}")));
            for r in 0..*n {
                let id = format!("t{t}r{r}");
                out.push(asks(&id));
                out.push(results(&id));
            }
            out.push(answer(&format!("answer {t}")));
        }
        out
    }

    #[test]
    fn a_history_within_the_limit_is_left_alone() {
        let c = conversation(&[0, 1]);
        assert_eq!(plan(&c, 900, 100, 1000), Plan::Fits);
    }

    #[test]
    fn past_the_limit_the_oldest_turns_go_until_the_rest_fits_in_half() {
        // A long first turn (three tool rounds), then two short ones.
        let c = conversation(&[3, 0, 0]);
        assert_eq!(plan(&c, 9000, 0, 6000), Plan::Compact { summarize: 8 });
        // Equal turns: keeping two of four would be half, over half less the input.
        let c = conversation(&[0, 0, 0, 0]);
        assert_eq!(plan(&c, 8000, 100, 8000), Plan::Compact { summarize: 6 });
        assert_eq!(plan(&c, 8000, 100, 20_000), Plan::Fits);
    }

    #[test]
    fn the_newest_turn_is_kept_verbatim_even_when_it_alone_is_too_large() {
        let c = conversation(&[0, 3]);
        assert_eq!(plan(&c, 50_000, 10, 1000), Plan::Compact { summarize: 2 });
        let one = conversation(&[2]);
        assert_eq!(plan(&one, 50_000, 10, 1000), Plan::NewestTurnOnly);
        assert_eq!(plan(&[], 0, 5000, 1000), Plan::NewestTurnOnly);
    }

    #[test]
    fn a_session_without_a_recorded_count_is_weighed_by_its_bytes() {
        let c = conversation(&[1]);
        let bytes: usize = c.iter().map(|m| record::encode(m).len()).sum();
        assert_eq!(history_tokens(0, &c), (bytes as u64).div_ceil(4));
        assert_eq!(history_tokens(1234, &c), 1234);
        assert_eq!(text_tokens("12345"), 2);
    }

    #[test]
    fn the_summary_is_the_first_block_of_the_first_user_message() {
        let c = conversation(&[0]);
        let seen = with_summary(Some("The user likes jazz."), c.clone());
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].content[0],
            Block::Text(
                "<conversation_summary>\nThe user likes jazz.\n</conversation_summary>".into()
            )
        );
        assert_eq!(seen[0].content[1..], c[0].content[..]);
        assert!(check(&seen, Some("next")).is_ok());
        assert_eq!(with_summary(None, c.clone()), c);
    }

    #[test]
    fn the_request_is_the_prompt_and_a_text_transcript_with_the_tool_calls() {
        let c = conversation(&[1]);
        let r = request(&c);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].role, Role::User);
        assert_eq!(
            r[0].text(),
            format!(
                "{PROMPT}\n\n<transcript>\n[user] question 0\n\
                 [assistant calls tool top_song (call t0r0)] {{\"sign\":\"WZPZ\"}}\n\
                 [tool result of call t0r0, success] {{\"song\":\"Elemental Hotel\"}}\n\
                 [assistant] answer 0\n</transcript>"
            )
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn a_compaction_replaces_whole_turns_and_keeps_a_valid_conversation(
            rounds in prop::collection::vec(0usize..4, 1..8),
            history_tokens in 0u64..100_000,
            input_tokens in 0u64..5_000,
            max in 1_000u64..50_000,
        ) {
            let c = conversation(&rounds);
            match plan(&c, history_tokens, input_tokens, max) {
                Plan::Fits => prop_assert!(history_tokens + input_tokens <= max),
                Plan::NewestTurnOnly => prop_assert_eq!(rounds.len(), 1),
                Plan::Compact { summarize } => {
                    prop_assert!(history_tokens + input_tokens > max);
                    // Something old goes, the newest turn stays, and the cut is a turn start:
                    // no toolUse loses its toolResult.
                    prop_assert!(summarize > 0 && summarize < c.len());
                    prop_assert!(is_turn_start(&c[summarize]));
                    let last = c.iter().rposition(is_turn_start).unwrap_or(0);
                    prop_assert!(summarize <= last);
                    let kept = with_summary(Some("s"), c[summarize..].to_vec());
                    prop_assert!(check(&kept, Some("next")).is_ok());
                    prop_assert!(check(&c[..summarize], Some("next")).is_ok());
                    // No more is summarised than needed: one turn fewer would not fit.
                    if let Some(prev) = (1..summarize).rev().find(|&i| is_turn_start(&c[i]))
                    {
                        let bytes = |r: &[Message]| r.iter().map(|m| record::encode(m).len() as u128).sum::<u128>();
                        let kept = u128::from(history_tokens) * bytes(&c[prev..]) / bytes(&c).max(1);
                        prop_assert!(kept > u128::from((max / 2).saturating_sub(input_tokens)));
                    }
                }
            }
        }
    }
}
