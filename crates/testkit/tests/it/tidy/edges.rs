//! Allowed edges point down only (docs/ARCHITECTURE.md, "Invariants"): a workspace crate
//! that gains a dependency on another one the table below does not allow fails here.

use std::collections::BTreeMap;

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand};

const DOMAIN: &[&str] = &[
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

/// The workspace crates each library crate may use (normal, build and dev dependencies;
/// every crate may also use itself and, in its tests, the test kit). The binaries
/// (`haven-api`, `haven-worker`, `haven-admin`) may use anything and are not listed.
fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
    let core = vec!["haven-core"];
    let mut table = BTreeMap::from([
        ("haven-core", vec![]),
        ("haven-address", core.clone()),
        ("haven-resilience", core.clone()),
        ("haven-auth", core.clone()),
        ("haven-rewards", core.clone()),
        ("haven-webhooks", core.clone()),
        ("haven-nonce", core.clone()),
        ("haven-custody", core.clone()),
        ("haven-fraud", core.clone()),
        ("haven-vault", core.clone()),
        // the guardian client speaks the vault protocol; it knows no server internals
        ("haven-guardian", vec!["haven-vault"]),
        ("haven-partners", vec!["haven-core", "haven-resilience"]),
        (
            "haven-chain",
            vec![
                "haven-core",
                "haven-nonce",
                "haven-custody",
                "haven-resilience",
            ],
        ),
        ("haven-db", DOMAIN.to_vec()),
        // readiness probes, config, telemetry, the metrics recorder: nothing domain-specific
        ("haven-service", core.clone()),
        ("haven-testkit", vec![]),
    ]);
    for uses in table.values_mut() {
        uses.sort_unstable();
    }
    table
}

/// Every edge `from -> to` between workspace crates that the table does not allow, and
/// every library crate the table does not know.
fn violations(metadata: &Metadata) -> Vec<String> {
    let members: Vec<&str> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let table = allowed();
    let mut found = Vec::new();
    for package in metadata.workspace_packages() {
        let name = package.name.as_str();
        let is_binary = package.manifest_path.as_str().contains("/bins/");
        if is_binary {
            continue;
        }
        let Some(uses) = table.get(name) else {
            found.push(format!("{name} is not in the table of allowed edges"));
            continue;
        };
        for dep in &package.dependencies {
            let to = dep.name.as_str();
            if !members.contains(&to) || to == name || uses.contains(&to) {
                continue;
            }
            if dep.kind == DependencyKind::Development && to == "haven-testkit" {
                continue;
            }
            found.push(format!("{name} -> {to} ({:?})", dep.kind));
        }
    }
    found
}

fn metadata() -> Metadata {
    MetadataCommand::new()
        .manifest_path(super::workspace_root().join("Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata runs")
}

#[test]
fn workspace_crates_use_only_the_edges_the_architecture_allows() {
    let found = violations(&metadata());
    assert!(
        found.is_empty(),
        "edges docs/ARCHITECTURE.md does not allow (move the code down, or change the \
         architecture and this table together):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_rule_catches_a_domain_crate_that_reaches_up() {
    let mut metadata = metadata();
    let db_edge = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "haven-service")
        .and_then(|service| service.dependencies.first().cloned())
        .expect("haven-service has a dependency");
    let mut edge = db_edge;
    edge.name = "haven-db".to_owned();
    edge.kind = DependencyKind::Normal;
    let nonce = metadata
        .packages
        .iter_mut()
        .find(|p| p.name.as_str() == "haven-nonce")
        .expect("haven-nonce is a member");
    nonce.dependencies.push(edge);
    let found = violations(&metadata);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("haven-nonce -> haven-db")),
        "the grafted edge was not reported: {found:?}"
    );
}
