//! Support shared by the operator's integration tests.

pub mod harness;
pub mod mock_api;
