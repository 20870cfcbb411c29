//! The name Claude sees for an MCP tool: `<tool>_<MCP tool name>`, made valid for Bedrock by
//! the rule shared with OpenAPI operations ([`agentry_crds::naming`], documented there).
//! Two tools that still end up with one name are refused (see the catalog), never renamed.

pub use agentry_crds::naming::{derive, is_valid};
