//! The environment the runtime's container image sets (`ENV` in `agent-runtime/Dockerfile`),
//! given to every runtime the benchmark starts: what is measured is what a pod runs.

/// The `ENV KEY=VALUE` lines of `dockerfile`, in order.
pub fn env_of(dockerfile: &str) -> Vec<(String, String)> {
    dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect()
}

/// The runtime image's environment.
pub fn env() -> Vec<(String, String)> {
    let path = agentry_tests::fixtures::repo_root().join("agent-runtime/Dockerfile");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    env_of(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_give_their_pairs_and_other_lines_nothing() {
        let file = "FROM x\n# ENV NOT=this\nENV A=1 B=\"two\"\nRUN ENV=no\n  ENV C=3\n";
        let pairs: Vec<(&str, &str)> = vec![("A", "1"), ("B", "two"), ("C", "3")];
        let got = env_of(file);
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, pairs);
    }

    #[test]
    fn the_runtime_image_sets_one_malloc_arena() {
        assert!(
            env().contains(&("MALLOC_ARENA_MAX".to_string(), "1".to_string())),
            "{:?}",
            env()
        );
    }
}
