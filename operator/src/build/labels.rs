//! Labels on every child: the Kubernetes recommended `app.kubernetes.io/*` set plus
//! `agentry.dev/agent`, and the selector that picks an Agent's runtime pods.

use std::collections::BTreeMap;

/// Label naming the Agent a child belongs to.
pub const AGENT_LABEL: &str = "agentry.dev/agent";
/// `app.kubernetes.io/managed-by` value of every child; the operator watches children by it.
pub const MANAGED_BY: &str = "agentry-operator";
/// Label selector of every child the operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=agentry-operator";

const NAME: &str = "agentry-agent";

/// Labels of a child of Agent `agent`.
pub fn labels(agent: &str) -> BTreeMap<String, String> {
    let mut l = selector(agent);
    l.insert("app.kubernetes.io/instance".into(), agent.into());
    l.insert("app.kubernetes.io/component".into(), "agent-runtime".into());
    l.insert("app.kubernetes.io/part-of".into(), "agentry".into());
    l.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    l
}

/// The labels that select Agent `agent`'s runtime pods. Kept minimal: a Deployment's selector
/// is immutable.
pub fn selector(agent: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), NAME.to_string()),
        (AGENT_LABEL.to_string(), agent.to_string()),
    ])
}

/// The selector in string form, as `status.selector` (scale subresource, HPA) needs it.
pub fn selector_string(agent: &str) -> String {
    selector(agent)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_carry_the_recommended_labels_and_the_agent_label() {
        let l = labels("weather");
        assert_eq!(l["agentry.dev/agent"], "weather");
        assert_eq!(l["app.kubernetes.io/instance"], "weather");
        assert_eq!(l["app.kubernetes.io/managed-by"], "agentry-operator");
        assert_eq!(l["app.kubernetes.io/part-of"], "agentry");
    }

    #[test]
    fn selector_string_is_sorted_and_matches_the_selector_labels() {
        assert_eq!(
            selector_string("weather"),
            "agentry.dev/agent=weather,app.kubernetes.io/name=agentry-agent"
        );
    }
}
