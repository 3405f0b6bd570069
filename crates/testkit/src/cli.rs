//! Running a binary as a person would, to prove that answering `--help` or `--version` does
//! nothing else.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a binary may take to answer before it counts as having started for real.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// Runs `exe` with `args` and returns its output once it exits.
///
/// Every service it could reach — `DATABASE_URL`, `REDIS_URL`, the RPC node, the listen
/// addresses of the api and the worker — points at one port this function holds open, and
/// the run fails if anything connected to it: a binary that answers `--help` and then
/// connects, or starts serving, is caught. A binary still running after 20 s has started
/// instead of answering; it is killed and the call panics.
pub fn run_without_side_effects(exe: &str, args: &[&str]) -> Output {
    let trap = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"));
    let port = trap
        .local_addr()
        .unwrap_or_else(|e| panic!("the trap has no address: {e}"))
        .port();
    let mut child = Command::new(exe)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("postgres://haven@127.0.0.1:{port}/haven"),
        )
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}"))
        .env("ETH_RPC_URL", format!("http://127.0.0.1:{port}"))
        .env("HAVEN_API_ADDR", format!("127.0.0.1:{port}"))
        .env("HAVEN_WORKER_ADDR", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {exe}: {e}"));
    let deadline = Instant::now() + ANSWER_WITHIN;
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot wait for {exe}: {e}"))
        {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{exe} {args:?} still ran after {ANSWER_WITHIN:?}: it started instead of answering"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_end(&mut stderr);
    }
    trap.set_nonblocking(true)
        .unwrap_or_else(|e| panic!("cannot make the trap non-blocking: {e}"));
    if let Ok((_, peer)) = trap.accept() {
        panic!("{exe} {args:?} connected to a service ({peer}) while it should only answer");
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Asserts that `exe --help` and `exe --version` each exit 0 without side effects (see
/// [`run_without_side_effects`]), print usage and `name` with the workspace version.
pub fn assert_answers_help_and_version(exe: &str, name: &str) {
    let help = run_without_side_effects(exe, &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.status.success(),
        "{name} --help: {:?}\n{text}",
        help.status
    );
    assert!(
        text.contains("Usage:"),
        "{name} --help prints its usage:\n{text}"
    );
    let version = run_without_side_effects(exe, &["--version"]);
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.status.success(),
        "{name} --version: {:?}",
        version.status
    );
    assert_eq!(
        text.trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION")),
        "{name} --version prints its name and version"
    );
}
