//! The code layout the runtime's release build gets from `agent-runtime/hot-symbols.txt`.

use std::path::Path;

use agentry_tests::fixtures::repo_root;

/// How many of the symbols `hot-symbols.txt` lays out first are in `binary` (from `nm`): the
/// list goes stale as dependencies, the toolchain and the code change, and the code an
/// invocation runs is then scattered again (more of the binary resident).
pub fn report(binary: &Path) {
    let list = repo_root().join("agent-runtime/hot-symbols.txt");
    let Ok(listed) = std::fs::read_to_string(&list) else {
        return;
    };
    let Ok(nm) = std::process::Command::new("nm")
        .arg("--defined-only")
        .arg(binary)
        .output()
    else {
        eprintln!("no nm: not checking {}", list.display());
        return;
    };
    let (found, listed) = coverage(&listed, &String::from_utf8_lossy(&nm.stdout));
    eprintln!("hot-symbols.txt: {found} of {listed} symbols are in this binary");
    if found * 10 < listed * 9 {
        eprintln!("hot-symbols.txt is stale: regenerate it with tests/hot-symbols");
    }
}

/// How many of the symbols in `list` (one per line) `nm` (its output) says are defined, of how
/// many.
fn coverage(list: &str, nm: &str) -> (usize, usize) {
    let defined: std::collections::HashSet<&str> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let names: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    let found = names.iter().filter(|n| defined.contains(*n)).count();
    (found, names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_the_listed_symbols_the_binary_defines() {
        let nm = "0000000000001000 t _ZN3one17h1E\n0000000000002000 T main\n";
        assert_eq!(coverage("_ZN3one17h1E\n_ZN3two17h2E\n\nmain\n", nm), (2, 3));
        assert_eq!(coverage("", nm), (0, 0));
    }
}
