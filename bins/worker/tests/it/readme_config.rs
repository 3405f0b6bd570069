//! The README's configuration table and the binaries' configuration agree: every setting a
//! binary reads is documented, and every documented setting is read by a binary (or is
//! one of the few script settings listed here with their reason).

use std::collections::BTreeSet;

/// Documented settings that no binary reads, each with its reason.
const NOT_BINARY_SETTINGS: &[(&str, &str)] = &[(
    "HAVEN_TOKEN_MINTER",
    "read by `./x run` (scripts/run-stack.sh) when it deploys the development token",
)];

/// The variables named in the first column of the README's configuration table.
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(haven_testkit::workspace_root().join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| {
            let first = line.split('|').nth(1).unwrap_or_default();
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_setting_is_documented_and_every_documented_setting_is_read() {
    let documented = documented();
    assert!(documented.len() > 20, "the table was found: {documented:?}");
    let binaries = [
        ("haven-api", haven_api::config::variables()),
        ("haven-worker", haven_worker::config::variables()),
        ("haven-admin", haven_admin::config::variables()),
    ];
    let mut undocumented = Vec::new();
    for (binary, variables) in &binaries {
        for var in variables {
            if !documented.contains(var) {
                undocumented.push(format!("{var} ({binary})"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "settings missing from the README's configuration table:\n  {}",
        undocumented.join("\n  ")
    );
    let read: BTreeSet<&str> = binaries
        .iter()
        .flat_map(|(_, variables)| variables.iter().map(String::as_str))
        .chain(NOT_BINARY_SETTINGS.iter().map(|(var, _)| *var))
        .collect();
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|var| !read.contains(var.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "documented settings no binary reads (remove them or read them): {unknown:?}"
    );
}
