use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Environment variable naming the role of a re-executed test binary.
pub const CHILD_ROLE: &str = "HAVEN_RESILIENCE_CHILD";

/// Prefix of the lines a child reports on stdout.
pub const REPORT: &str = "CHILD:";

/// Re-runs this test binary as a separate process executing `role` (see `child_entry`).
pub fn spawn_child(role: &str, env: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "child_entry",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ROLE, role)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit())
    .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Lines of a child's stdout that start with [`REPORT`], as they arrive.
pub struct Reports {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Reports {
    pub fn of(child: &mut Child) -> Self {
        Self {
            lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        }
    }

    /// The next report line, without the prefix.
    pub async fn next(&mut self) -> String {
        while let Some(line) = self.lines.next_line().await.unwrap() {
            // libtest may print its own "test child_entry ... " before the report on a line.
            if let Some((_, rest)) = line.split_once(REPORT) {
                return rest.to_owned();
            }
        }
        panic!("child exited without reporting");
    }
}

/// Prints a report line for the parent.
pub fn report(line: impl std::fmt::Display) {
    println!("{REPORT}{line}");
}

#[cfg(feature = "redis")]
pub fn pool(url: &str) -> deadpool_redis::Pool {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}
