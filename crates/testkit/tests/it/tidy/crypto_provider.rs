//! Only binaries and tests choose the process's rustls crypto provider: library crates take
//! a configured client or require an installed provider and say so in their docs.

use std::path::Path;

/// Library files allowed to install a provider, each with its reason.
const ALLOWED: &[(&str, &str)] = &[(
    "crates/testkit/src/crypto.rs",
    "the test kit is test support (a dev-dependency only): tests choose ring through \
     `haven_testkit::install_crypto_provider`",
)];

/// The lines of `text` (outside comments) that install a process-wide crypto provider.
fn installs(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim_start();
            !code.starts_with("//") && code.contains("install_default(")
        })
        .map(|(index, _)| index + 1)
        .collect()
}

#[test]
fn no_library_crate_installs_the_crypto_provider() {
    let root = super::workspace_root();
    let mut found = Vec::new();
    for file in super::rust_files(&root.join("crates")) {
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        let relative_text = relative.to_string_lossy().replace('\\', "/");
        // library code only: src/ of each crate (tests, benches and fuzz targets are tests)
        if !relative_text.contains("/src/") || relative_text.contains("/fuzz/") {
            continue;
        }
        if ALLOWED.iter().any(|(path, _)| *path == relative_text) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        for line in installs(&text) {
            found.push(format!("{relative_text}:{line}"));
        }
    }
    assert!(
        found.is_empty(),
        "library crates must not install the rustls crypto provider (the binary or the test \
         chooses it; the library documents that it needs one):\n  {}",
        found.join("\n  ")
    );
    for (path, _) in ALLOWED {
        assert!(
            Path::new(&root.join(path)).exists(),
            "{path} is allowed but gone"
        );
    }
}

#[test]
fn the_scan_finds_an_install_and_skips_comments() {
    let text = "fn new() {\n    // rustls::crypto::ring::default_provider().install_default();\n    \
                let _ = rustls::crypto::ring::default_provider().install_default();\n}\n";
    assert_eq!(installs(text), vec![3]);
}
