//! The store's Lua scripts, one per change, each run with EVALSHA (reloaded on NOSCRIPT). Every
//! script checks its arguments, the lease token and the version before its first write:
//! Redis keeps the writes of a script that fails halfway, so "nothing written half" holds only
//! if no check can fail after a write.
//!
//! Every script takes the keys of one session ([`super::store::Keys`]), which share one hash
//! tag and so one cluster slot.

use std::sync::LazyLock;

use redis::Script;

/// Takes the lease and loads the session (`busy` while another holder has it).
pub static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/acquire.lua")));
/// Extends the lease of its holder.
pub static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/renew.lua")));
/// Gives the lease back without committing.
pub static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release.lua")));
/// Appends the new messages and releases the lease, checking token and version first.
pub static COMMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/commit.lua")));
/// Appends to the running invocation's checkpoint, checking token, version and length first.
pub static CHECKPOINT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/checkpoint.lua")));
/// Keeps a turn's checkpoint for approval and gives the lease back.
pub static PARK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/park.lua")));
/// Reads a session without its lease.
pub static READ: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/read.lua")));
/// Deletes a session no invocation holds.
pub static DELETE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/delete.lua")));
