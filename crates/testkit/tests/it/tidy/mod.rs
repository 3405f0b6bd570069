//! Workspace rules checked as ordinary tests: what domain crates may link
//! ([`frameworks`]), which crate may use which ([`edges`]), who chooses the TLS crypto
//! provider ([`crypto_provider`]) and how long a file or a function may grow ([`sizes`]).

mod crypto_provider;
mod edges;
mod frameworks;
mod sizes;

/// The workspace root.
fn workspace_root() -> std::path::PathBuf {
    haven_testkit::workspace_root()
}

/// Every `.rs` file under `dir`, skipping build output.
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target") {
                    continue;
                }
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
