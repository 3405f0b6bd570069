//! `deploy/prometheus/alerts.yml`: valid for Prometheus, each alert proven by promtool's rule
//! tests, and every series it names served on the api's `/metrics`.

use std::path::{Path, PathBuf};
use std::process::Command;

use haven_api::testing::spawn_api;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

/// Runs `promtool args…` in `deploy/prometheus`; fails with how to install it when absent.
fn promtool(args: &[&str]) -> String {
    let output = match Command::new("promtool")
        .args(args)
        .current_dir(deploy_dir())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed: it checks deploy/prometheus/alerts.yml. Install the \
             Debian package `prometheus` (apt-get install --no-install-recommends prometheus) \
             or run scripts/test-tools.sh"
        ),
        Err(err) => panic!("cannot run promtool: {err}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let text = promtool(&["check", "rules", "alerts.yml"]);
    assert!(text.contains("SUCCESS: 5 rules found"), "{text}");
}

#[test]
fn promtool_rule_tests_fire_each_alert() {
    promtool(&["test", "rules", "alerts_test.yml"]);
}

/// The `haven_*` series named in the rules' expressions (a histogram's `_bucket` mapped to
/// the histogram's name).
fn series_in_rules() -> Vec<String> {
    let rules = std::fs::read_to_string(deploy_dir().join("alerts.yml")).unwrap();
    let mut names: Vec<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("haven_"))
        .map(|word| word.trim_end_matches("_bucket").to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn every_series_the_alerts_name_is_served_by_the_api() {
    let api = spawn_api().await;
    api.breakers.get_or_create("alerts_probe").unwrap();
    let client = reqwest::Client::new();
    let res = client.get(api.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = client
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names = series_in_rules();
    for expected in [
        "haven_http_request_duration_seconds",
        "haven_http_requests_total",
        "haven_db_pool_connections_in_use",
        "haven_db_pool_connections_max",
        "haven_breaker_state",
        "haven_outbox_oldest_age_seconds",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for name in &names {
        assert!(
            text.lines().any(|line| line.starts_with(name.as_str())),
            "{name} is not on /metrics:\n{text}"
        );
    }
    assert!(
        text.contains(r#"haven_breaker_state{breaker="alerts_probe"} 0"#),
        "{text}"
    );
    for outbox in haven_db::OUTBOXES.map(|(name, _)| name) {
        assert!(
            text.contains(&format!(
                r#"haven_outbox_oldest_age_seconds{{outbox="{outbox}"}} 0"#
            )),
            "{outbox}: {text}"
        );
    }
}
