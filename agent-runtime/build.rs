//! Release builds for x86_64 Linux lay the code an invocation runs out together, first in
//! `.text`, from `hot-symbols.txt` (LLD, Rust's default linker there, reads it). The kernel maps
//! a binary's pages around each one touched, so scattered hot functions made 9.7 of the 18 MB of
//! code resident under load. The list is regenerated with `tests/hot-symbols` after dependency or
//! toolchain updates; a symbol it names that no longer exists is skipped.
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=hot-symbols.txt");
    println!("cargo::rerun-if-env-changed=AGENTRY_NO_SYMBOL_ORDER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && std::env::var_os("AGENTRY_NO_SYMBOL_ORDER").is_none();
    if wanted {
        let list = Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-symbols.txt");
        let arg = "cargo::rustc-link-arg-bin=agentry-runtime";
        println!("{arg}=-Wl,--symbol-ordering-file={}", list.display());
        println!("{arg}=-Wl,--no-warn-symbol-ordering");
    }
}
