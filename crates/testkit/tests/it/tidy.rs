//! Workspace rules checked as ordinary tests.

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
    haven_testkit::workspace_root()
}
