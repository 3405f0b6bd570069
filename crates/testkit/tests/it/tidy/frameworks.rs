//! Domain crates link no web, database, job or CLI framework — not even in their tests.

use std::collections::{BTreeSet, HashMap, VecDeque};

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, PackageId};

/// Crates that hold domain logic and must stay importable on their own.
const DOMAIN_CRATES: &[&str] = &[
    "haven-core",
    "haven-address",
    "haven-resilience",
    "haven-webhooks",
    "haven-nonce",
    "haven-custody",
    "haven-fraud",
    "haven-chain",
    "haven-auth",
    "haven-rewards",
    "haven-partners",
    "haven-vault",
    "haven-guardian",
];

/// Web, database, job and CLI frameworks that belong to crates/db and the binaries only.
const FORBIDDEN: &[&str] = &[
    "actix-web",
    "actix-http",
    "diesel",
    "diesel-async",
    "diesel_migrations",
    "apalis",
    "apalis-core",
    "apalis-redis",
    "apalis-cron",
    "clap",
];

/// For every domain crate in the workspace, each forbidden crate it reaches through normal
/// or build dependencies (with every feature on), as `crate -> … -> forbidden`.
fn violations(metadata: &Metadata) -> Vec<String> {
    let resolve = metadata
        .resolve
        .as_ref()
        .expect("cargo metadata has a resolve graph");
    let names: HashMap<&PackageId, &str> = metadata
        .packages
        .iter()
        .map(|p| (&p.id, p.name.as_str()))
        .collect();
    let nodes: HashMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let mut found = Vec::new();
    for package in metadata.workspace_packages() {
        if !DOMAIN_CRATES.contains(&package.name.as_str()) {
            continue;
        }
        let mut queue = VecDeque::from([(&package.id, vec![package.name.to_string()])]);
        let mut seen = BTreeSet::new();
        while let Some((id, path)) = queue.pop_front() {
            if !seen.insert(id.repr.clone()) {
                continue;
            }
            let Some(node) = nodes.get(id) else { continue };
            for dep in &node.deps {
                let runtime = dep
                    .dep_kinds
                    .iter()
                    .any(|k| matches!(k.kind, DependencyKind::Normal | DependencyKind::Build));
                if !runtime {
                    continue;
                }
                let name = names.get(&dep.pkg).copied().unwrap_or("?");
                let mut next = path.clone();
                next.push(name.to_owned());
                if FORBIDDEN.contains(&name) {
                    found.push(next.join(" -> "));
                } else {
                    queue.push_back((&dep.pkg, next));
                }
            }
        }
    }
    found
}

#[test]
fn domain_crates_depend_on_no_web_database_job_or_cli_framework() {
    let metadata = MetadataCommand::new()
        .manifest_path(crate_root().join("Cargo.toml"))
        .features(cargo_metadata::CargoOpt::AllFeatures)
        .exec()
        .expect("cargo metadata runs");
    let domain_present = metadata
        .workspace_packages()
        .iter()
        .filter(|p| DOMAIN_CRATES.contains(&p.name.as_str()))
        .count();
    assert!(
        domain_present >= 2,
        "the domain crates were not found in the workspace"
    );
    let found = violations(&metadata);
    assert!(
        found.is_empty(),
        "domain crates must not depend on these frameworks (adapters belong in crates/db or bins/):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_rule_catches_a_domain_crate_that_gains_a_framework() {
    let mut metadata = MetadataCommand::new()
        .manifest_path(crate_root().join("Cargo.toml"))
        .exec()
        .expect("cargo metadata runs");
    // Graft the api's edge to actix-web onto haven-core, as if core had gained it.
    let id_of = |m: &Metadata, name: &str| {
        m.packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.id.clone())
    };
    let core = id_of(&metadata, "haven-core").expect("haven-core is a member");
    let actix = id_of(&metadata, "actix-web").expect("actix-web is in the graph (bins/api)");
    let resolve = metadata.resolve.as_mut().expect("resolve graph");
    let api_edge = resolve
        .nodes
        .iter()
        .flat_map(|n| n.deps.iter())
        .find(|d| d.pkg == actix)
        .cloned()
        .expect("some crate depends on actix-web");
    let node = resolve
        .nodes
        .iter_mut()
        .find(|n| n.id == core)
        .expect("core node");
    node.deps.push(api_edge);
    let found = violations(&metadata);
    assert!(
        found.iter().any(|v| v == "haven-core -> actix-web"),
        "the grafted edge was not reported: {found:?}"
    );
}

fn crate_root() -> std::path::PathBuf {
    super::workspace_root()
}

/// The frameworks `cargo tree -p <crate> -e normal,dev --all-features` lists for one crate:
/// what its own test and bench binaries link, with that crate's features only (the
/// workspace-wide resolve of `cargo metadata` would unify the features other members turn
/// on, e.g. the test kit's `postgres`).
fn frameworks_in_test_build(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(crate_root())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal,dev",
            "--all-features",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        // criterion links clap in benches; the web and database stacks are what A1 keeps out
        .filter(|name| FORBIDDEN.contains(name) && *name != "clap")
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A1: a domain crate's tests and benches build without the web and database stacks (the
/// api's test server lives behind `haven-api`'s `test-utils` feature and `TestDb` behind
/// the test kit's `postgres` feature, which only crates/db and the binaries turn on).
#[test]
fn domain_crates_tests_link_no_framework_either() {
    let mut found = Vec::new();
    for package in DOMAIN_CRATES {
        for name in frameworks_in_test_build(package) {
            found.push(format!("{package} (normal + dev) -> {name}"));
        }
    }
    assert!(
        found.is_empty(),
        "domain crates' tests must build without these frameworks:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_test_build_check_sees_a_framework_where_there_is_one() {
    // haven-db links diesel by design: the same check must report it there.
    assert!(
        frameworks_in_test_build("haven-db").contains(&"diesel".to_owned()),
        "cargo tree of haven-db shows diesel"
    );
}
