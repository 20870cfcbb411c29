//! Where a stored conversation may be cut, without I/O: only at a *turn start* — a user
//! message with no `toolResult` block. Converse puts every toolResult in the user message
//! right after its toolUse, so a cut before a turn start never separates a pair, and what is
//! kept still starts with a user message.

use crate::conversation::{Block, Message, Role};

/// Whether `m` starts a turn: a user message that answers no tool call.
pub fn is_turn_start(m: &Message) -> bool {
    m.role == Role::User && !m.content.iter().any(|b| matches!(b, Block::ToolResult(_)))
}

/// How many messages to drop from the front so that at most `max` remain: the smallest turn
/// start `i` with `len - i <= max`. It never cuts into the newest turn: when that turn alone
/// is longer than `max`, the whole turn is kept (`maxMessages` is a soft cap at turn
/// granularity).
pub fn cut(messages: &[Message], max: usize) -> usize {
    let len = messages.len();
    if len <= max {
        return 0;
    }
    let starts = || (0..len).filter(|&i| is_turn_start(&messages[i]));
    starts()
        .find(|&i| len - i <= max)
        .or_else(|| starts().next_back())
        .unwrap_or(0)
}

/// How many of an invocation's new messages a session keeps: up to and including the last
/// assistant message that asks for no tool, so stored history is whole turns that the next
/// input can follow. An invocation stopped in a tool round (a limit) keeps its messages only
/// up to the model's last answer — none when it gave none.
pub fn settled(new: &[Message]) -> usize {
    new.iter()
        .rposition(|m| m.role == Role::Assistant && m.tool_uses().is_empty())
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ToolResult, ToolUse, check};
    use proptest::prelude::*;

    fn user(t: &str) -> Message {
        Message::user_text(t)
    }
    fn answer(t: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::Text(t.into())],
        }
    }
    fn asks(ids: &[String]) -> Message {
        Message {
            role: Role::Assistant,
            content: ids
                .iter()
                .map(|id| {
                    Block::ToolUse(ToolUse {
                        tool_use_id: id.clone(),
                        name: "t".into(),
                        input: serde_json::json!({}),
                    })
                })
                .collect(),
        }
    }
    fn results(ids: &[String]) -> Message {
        Message {
            role: Role::User,
            content: ids
                .iter()
                .map(|id| Block::ToolResult(ToolResult::error(id, "x")))
                .collect(),
        }
    }

    /// A conversation of whole turns: each has this many tool rounds, of 1–3 calls each.
    fn conversation(turns: &[Vec<usize>]) -> Vec<Message> {
        let mut out = vec![];
        for (t, rounds) in turns.iter().enumerate() {
            out.push(user(&format!("q{t}")));
            for (r, calls) in rounds.iter().enumerate() {
                let ids: Vec<String> = (0..*calls).map(|c| format!("t{t}r{r}c{c}")).collect();
                out.push(asks(&ids));
                out.push(results(&ids));
            }
            out.push(answer(&format!("a{t}")));
        }
        out
    }

    #[test]
    fn a_conversation_within_the_cap_is_kept_whole() {
        let c = conversation(&[vec![], vec![1]]);
        assert_eq!(cut(&c, 6), 0);
        assert_eq!(cut(&c, 100), 0);
    }

    #[test]
    fn the_oldest_whole_turns_are_dropped_and_a_tool_pair_is_never_split() {
        // q0 a0 | q1 use res a1 | q2 a2: 8 messages, cap 5 must drop q0, a0 and the whole q1
        // turn (cutting at `res` would orphan the result).
        let c = conversation(&[vec![], vec![1], vec![]]);
        assert_eq!(c.len(), 8);
        assert_eq!(cut(&c, 5), 6);
        assert_eq!(cut(&c, 6), 2);
    }

    #[test]
    fn a_newest_turn_longer_than_the_cap_is_kept_whole() {
        let c = conversation(&[vec![], vec![2, 1, 1]]);
        assert_eq!(cut(&c, 3), 2);
    }

    #[test]
    fn only_whole_answers_are_settled() {
        let ids = vec!["x".to_string()];
        assert_eq!(settled(&[user("q"), answer("a")]), 2);
        assert_eq!(settled(&[user("q"), asks(&ids)]), 0);
        assert_eq!(settled(&[user("q"), asks(&ids), results(&ids)]), 0);
        assert_eq!(settled(&[user("q")]), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn the_kept_part_is_a_valid_conversation_within_the_cap_unless_it_is_the_last_turn(
            turns in prop::collection::vec(prop::collection::vec(1usize..4, 0..4), 1..8),
            max in 1usize..40,
        ) {
            let c = conversation(&turns);
            let drop = cut(&c, max);
            let kept = &c[drop..];
            // Whole turns: Bedrock would take it with the next input after it.
            prop_assert!(is_turn_start(&kept[0]));
            prop_assert!(check(kept, Some("next")).is_ok(), "{:?}", check(kept, Some("next")));
            let last_turn = c.iter().rposition(is_turn_start).unwrap_or(0);
            prop_assert!(kept.len() <= max || drop == last_turn, "kept {} of cap {max}", kept.len());
            // No more is dropped than needed: keeping one more turn would pass the cap.
            if let Some(prev) = (0..drop).rev().find(|&i| is_turn_start(&c[i])) {
                prop_assert!(c.len() - prev > max);
            }
        }
    }
}
