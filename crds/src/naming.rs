//! The name Claude sees for a tool derived from another name: an MCP server's tool or an OpenAPI
//! operation. One rule, shared by the operator (which checks OpenAPI names for collisions) and
//! the runtime (which offers them). Bedrock tool names match `^[a-zA-Z0-9_-]{1,64}$`; the names
//! they come from may be longer and hold `.` or `/`. The rule, deterministic and documented:
//!
//! 1. Join the Agent tool's name and the derived tool's name with `_`: `github` +
//!    `search.issues` gives `github_search.issues`.
//! 2. If that is a valid Bedrock name, it is the name.
//! 3. Otherwise every character other than a letter, digit, `_` or `-` becomes `_`, the result
//!    is cut to 55 characters, and `_` plus 8 lowercase hex digits of the 32-bit FNV-1a hash of
//!    the joined name (step 1) are appended: `github_search_issues_1c9d0b4e`. The hash keeps
//!    apart names that differ only in the replaced or cut characters.
//!
//! Two tools that still end up with one name are refused, never renamed.

/// Longest Bedrock tool name.
pub const MAX_TOOL_NAME: usize = 64;
/// `_` and 8 hex digits.
const SUFFIX: usize = 9;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `name` is a valid Bedrock tool name.
pub fn is_valid(name: &str) -> bool {
    (1..=MAX_TOOL_NAME).contains(&name.len()) && name.chars().all(valid_char)
}

/// 32-bit FNV-1a: tiny, stable across releases and platforms, and easy to recompute by hand.
fn fnv1a(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The Bedrock-visible name of `inner` (an MCP tool, an OpenAPI operationId) of the Agent
/// tool `tool`.
pub fn derive(tool: &str, inner: &str) -> String {
    let joined = format!("{tool}_{inner}");
    if is_valid(&joined) {
        return joined;
    }
    let mut out: String = joined
        .chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .take(MAX_TOOL_NAME - SUFFIX)
        .collect();
    out.push_str(&format!("_{:08x}", fnv1a(&joined)));
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_valid_joined_name_is_kept_as_it_is() {
        assert_eq!(derive("clock", "time_now"), "clock_time_now");
        assert_eq!(derive("k8s", "get-pods"), "k8s_get-pods");
    }

    #[test]
    fn invalid_characters_are_replaced_and_a_hash_of_the_full_name_appended() {
        let name = derive("github", "search.issues");
        assert_eq!(
            name,
            format!("github_search_issues_{:08x}", fnv1a("github_search.issues"))
        );
        assert!(is_valid(&name));
        // Names differing only in a replaced character stay apart.
        assert_ne!(
            derive("github", "search.issues"),
            derive("github", "search/issues")
        );
        assert_ne!(
            derive("github", "search.issues"),
            derive("github", "search_issues")
        );
    }

    #[test]
    fn long_names_are_cut_to_64_with_the_hash() {
        let long = "a".repeat(100);
        let name = derive("srv", &long);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("srv_aaaa"));
        assert_ne!(name, derive("srv", &"a".repeat(101)));
    }

    #[test]
    fn the_hash_is_fnv1a_32() {
        // Published FNV-1a test vectors.
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn every_derived_name_is_a_valid_bedrock_name(
            tool in "[a-zA-Z0-9_-]{1,64}",
            inner in "[ -~]{1,130}",
        ) {
            let name = derive(&tool, &inner);
            prop_assert!(is_valid(&name), "{name}");
            prop_assert_eq!(name.clone(), derive(&tool, &inner));
        }
    }
}
