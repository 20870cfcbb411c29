//! Test harness shared by the cross-crate suites in `tests/tests/`.
//!
//! - [`fixtures`]: the example manifests and the invalid-Agent cases, read from the repository.
//! - [`cluster`]: access to a real cluster through `KUBECONFIG`, with a printed reason to skip
//!   when none is given, and throwaway namespaces.

pub mod cluster;
pub mod fixtures;
