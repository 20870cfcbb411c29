//! What is offered to the model now: every configured tool's entries merged into one offer,
//! rebuilt whenever a source changes (an MCP server connects, goes away or lists new tools).
//!
//! Sources are merged in configuration order, so the result depends only on which tools each
//! source has, never on which server answered first: a name already taken (by an earlier
//! source, or by an http or agent tool, whose names are reserved first) is refused, and the
//! refusal names both tools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{Offered, ToolKind};
use crate::bedrock::ToolSpec;

/// One tool as offered: what Claude sees, and how a call reaches it.
#[derive(Clone)]
pub struct Entry {
    /// The spec Claude sees (its name is the Bedrock-visible name).
    pub spec: ToolSpec,
    /// The kind that runs calls.
    pub kind: Arc<dyn ToolKind>,
    /// The kind's own name for the tool (the MCP tool's name; for one-tool kinds, the name).
    pub target: String,
    /// Deadline of one call.
    pub timeout: Duration,
    /// Where the name came from, for collision messages (`tool time_now of MCP server clock`).
    pub origin: String,
    /// A name the author wrote (http and agent tools): reserved before derived names.
    pub plain: bool,
    /// The configured tool it comes from (its index), set by [`Catalog::set`].
    pub source: usize,
}

/// The current offer and the routes of its names.
pub struct Offer {
    /// What the model sees.
    pub offered: Arc<Offered>,
    /// Each offered name's entry.
    pub routes: HashMap<String, Entry>,
}

/// The sources (one per configured tool, in configuration order) and their merged offer.
pub struct Catalog {
    sources: Mutex<Vec<Vec<Entry>>>,
    /// Names each source lost to a collision, with the message.
    refused: Mutex<Vec<Vec<String>>>,
    current: RwLock<Arc<Offer>>,
}

impl Catalog {
    /// A catalog of `n` sources, all empty.
    pub fn new(n: usize) -> Self {
        Self {
            sources: Mutex::new(vec![Vec::new(); n]),
            refused: Mutex::new(vec![Vec::new(); n]),
            current: RwLock::new(Arc::new(Offer {
                offered: Arc::new(Offered {
                    version: 1,
                    specs: Vec::new(),
                }),
                routes: HashMap::new(),
            })),
        }
    }

    /// The offer now; cheap (one `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<Offer> {
        // A poisoned lock only means a writer panicked after a complete swap.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the entries of `source`; the offer's version changes only if the offer does.
    pub fn set(&self, source: usize, mut entries: Vec<Entry>) {
        entries.iter_mut().for_each(|e| e.source = source);
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = sources.get_mut(source) {
            *slot = entries;
        }
        let (specs, routes, refused) = merge(&sources);
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = refused;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.offered.specs == specs {
            return;
        }
        let version = current.offered.version + 1;
        *current = Arc::new(Offer {
            offered: Arc::new(Offered { version, specs }),
            routes,
        });
    }

    /// Empties every source (entries hold their kinds; this breaks the cycle at shutdown).
    pub fn clear(&self) {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        sources.iter_mut().for_each(Vec::clear);
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(Offer {
            offered: current.offered.clone(),
            routes: HashMap::new(),
        });
    }

    /// How many of `source`'s entries are offered now.
    pub fn offered_count(&self, source: usize) -> usize {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let all = sources.get(source).map_or(0, Vec::len);
        all - refused.get(source).map_or(0, Vec::len).min(all)
    }

    /// Why some of `source`'s entries are not offered.
    pub fn refused(&self, source: usize) -> Vec<String> {
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        refused.get(source).cloned().unwrap_or_default()
    }
}

type Merged = (Vec<ToolSpec>, HashMap<String, Entry>, Vec<Vec<String>>);

/// Merges sources in order; plain names (http, agent tools) are reserved first.
fn merge(sources: &[Vec<Entry>]) -> Merged {
    let mut routes: HashMap<String, Entry> = HashMap::new();
    let mut refused = vec![Vec::new(); sources.len()];
    let pass = |plain: bool| {
        sources.iter().enumerate().flat_map(move |(i, entries)| {
            entries
                .iter()
                .filter(move |e| e.plain == plain)
                .map(move |e| (i, e))
        })
    };
    let mut order = Vec::new();
    for (i, e) in pass(true).chain(pass(false)) {
        if let Some(holder) = routes.get(&e.spec.name) {
            let message = format!(
                "{} is not offered: its name {} is already taken by {}",
                e.origin, e.spec.name, holder.origin
            );
            tracing::warn!("{message}");
            refused[i].push(message);
            continue;
        }
        routes.insert(e.spec.name.clone(), e.clone());
        order.push((i, e.spec.clone()));
    }
    // The model sees the tools in configuration order, whatever order names were reserved in.
    order.sort_by_key(|(i, _)| *i);
    let specs = order.into_iter().map(|(_, s)| s).collect();
    (specs, routes, refused)
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;
    use serde_json::json;

    use super::*;
    use crate::conversation::ToolResult;
    use crate::tools::Call;

    struct Nothing;
    impl ToolKind for Nothing {
        fn kind(&self) -> &'static str {
            "none"
        }

        fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
            Box::pin(async move { ToolResult::error(call.id, "nothing") })
        }
    }

    fn entry(name: &str, target: &str, origin: &str) -> Entry {
        Entry {
            source: 0,
            spec: ToolSpec {
                name: name.into(),
                description: "d".into(),
                input_schema: json!({"type": "object"}),
            },
            kind: Arc::new(Nothing),
            target: target.into(),
            timeout: Duration::from_secs(1),
            origin: origin.into(),
            plain: name == target,
        }
    }

    fn names(c: &Catalog) -> Vec<String> {
        c.current()
            .offered
            .specs
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn an_earlier_source_keeps_a_name_whatever_order_sources_arrive_in() {
        let c = Catalog::new(3);
        c.set(2, vec![entry("a_b", "b", "tool b of MCP server a_")]);
        assert_eq!(names(&c), ["a_b"]);
        c.set(1, vec![entry("a_b", "a_b", "tool a_b of MCP server a")]);
        assert_eq!(names(&c), ["a_b"]);
        assert_eq!(c.offered_count(1), 1);
        assert_eq!(c.offered_count(2), 0);
        let why = c.refused(2);
        assert_eq!(
            why,
            [
                "tool b of MCP server a_ is not offered: its name a_b is already taken by tool a_b of MCP server a"
            ]
        );
    }

    #[test]
    fn a_plain_tool_name_wins_over_a_derived_one_even_when_configured_later() {
        let c = Catalog::new(2);
        c.set(0, vec![entry("x_y", "y", "tool y of MCP server x")]);
        c.set(1, vec![entry("x_y", "x_y", "http tool x_y")]);
        assert_eq!(c.offered_count(1), 1);
        assert_eq!(c.offered_count(0), 0);
        assert!(c.refused(0)[0].contains("already taken by http tool x_y"));
    }

    #[test]
    fn the_version_changes_only_when_the_offer_does() {
        let c = Catalog::new(1);
        let v1 = c.current().offered.version;
        c.set(0, vec![entry("t", "t", "http tool t")]);
        let v2 = c.current().offered.version;
        assert!(v2 > v1);
        c.set(0, vec![entry("t", "t", "http tool t")]);
        assert_eq!(c.current().offered.version, v2);
        c.set(0, vec![]);
        assert!(c.current().offered.version > v2);
        assert!(names(&c).is_empty());
    }
}
