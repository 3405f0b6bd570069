//! The deployment files in `deploy/`: the production settings file names every documented
//! setting, and the systemd units run the binaries hardened, with those settings.

use std::collections::BTreeSet;

use haven_testkit::workspace_root;

/// Documented settings that have no place in a production settings file, each with its reason.
const NOT_IN_PRODUCTION: &[(&str, &str)] = &[(
    "HAVEN_TOKEN_MINTER",
    "read by `./x run` when it deploys the development token",
)];

/// The variables named in the first column of the README's configuration table (which
/// `haven-worker`'s `readme_config` test keeps equal to what the binaries read).
fn documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
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

/// The names the file sets or shows commented out (`NAME=` or `#NAME=`).
fn named_in_env_file(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.trim_start_matches('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

#[test]
fn the_production_settings_file_names_every_documented_setting() {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/production.env.example")).unwrap();
    let named = named_in_env_file(&text);
    let documented = documented();
    assert!(documented.len() > 50, "the table was found: {documented:?}");
    let missing: Vec<&String> = documented
        .iter()
        .filter(|var| !named.contains(*var))
        .filter(|var| !NOT_IN_PRODUCTION.iter().any(|(v, _)| v == var))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/production.env.example does not mention {missing:?}"
    );
    let unknown: Vec<&String> = named
        .iter()
        .filter(|var| !documented.contains(*var))
        .collect();
    assert!(unknown.is_empty(), "undocumented settings: {unknown:?}");
    for required in [
        "HAVEN_ENV=production",
        "HAVEN_LOG_FORMAT=json",
        "\nDATABASE_URL=",
        "\nHAVEN_JWT_SECRET=",
        "\nHAVEN_API_KEY_PEPPER=",
        "\nHAVEN_MASTER_KEYS=",
    ] {
        assert!(text.contains(required), "{required} is set");
    }
    // the deployer key and the partners' keys are never kept in the service's file
    for kept_out in ["\nHAVEN_DEPLOYER_KEY=", "\nHAVEN_WEBHOOK_SECRET="] {
        assert!(!text.contains(kept_out), "{kept_out} is commented out");
    }
}

#[test]
fn the_systemd_units_are_hardened_and_read_the_production_settings() {
    for binary in ["haven-api", "haven-worker"] {
        let path = workspace_root().join(format!("deploy/systemd/{binary}.service"));
        let unit = std::fs::read_to_string(&path).unwrap();
        for line in [
            format!("ExecStart=/usr/local/bin/{binary}"),
            "EnvironmentFile=/etc/haven/production.env".to_owned(),
            "User=haven".to_owned(),
            "NoNewPrivileges=yes".to_owned(),
            "ProtectSystem=strict".to_owned(),
            "ProtectHome=yes".to_owned(),
            "PrivateTmp=yes".to_owned(),
            "PrivateDevices=yes".to_owned(),
            "MemoryDenyWriteExecute=yes".to_owned(),
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX".to_owned(),
            "SystemCallFilter=@system-service".to_owned(),
            "Restart=on-failure".to_owned(),
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "{} lacks {line}",
                path.display()
            );
        }
    }
}

/// `systemd-analyze verify` accepts both units (with the binary path pointed at `/bin/true`,
/// since the binaries are not installed here). Skipped where systemd-analyze is absent.
#[test]
fn systemd_analyze_accepts_the_units() {
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed; the units were checked as text only");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for binary in ["haven-api", "haven-worker"] {
        let unit = std::fs::read_to_string(
            workspace_root().join(format!("deploy/systemd/{binary}.service")),
        )
        .unwrap()
        .replace(&format!("/usr/local/bin/{binary}"), "/bin/true");
        let path = dir.path().join(format!("{binary}.service"));
        std::fs::write(&path, unit).unwrap();
        paths.push(path);
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("Unknown key"), "{text}");
}
