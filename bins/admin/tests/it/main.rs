#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod address;
mod alerts;
mod audit;
mod chain;
mod cli;
mod config_check;
mod custody;
mod deploy;
mod operators;
mod rewards;
mod staking;
mod sync;
mod users;
mod webhook_endpoints;
mod webhooks;

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs the real `haven-admin` binary; returns (exit code, stdout, stderr).
pub fn admin(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haven-admin"));
    cmd.args(args)
        .env_remove("HAVEN_CONFIG")
        .env("HAVEN_ENV", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
