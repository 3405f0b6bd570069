//! A server process of a test's own, on a local port kept across restarts.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process listening on a port picked once, so that clients configured with it
/// reach the server again after a restart. Killed by [`LocalServer::stop`] and on drop.
#[derive(Debug)]
pub(crate) struct LocalServer {
    child: Option<Child>,
    port: u16,
}

impl LocalServer {
    /// No process yet, on a port that is free now.
    pub(crate) fn on_free_port() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port: {e}"));
        Self { child: None, port }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs `command` (`name` in messages), its output discarded, and waits up to `wait`
    /// until `ready(port)` holds. Panics, with the reason, if it cannot start, exits or
    /// does not get ready in time.
    pub(crate) fn start(
        &mut self,
        name: &str,
        mut command: Command,
        wait: Duration,
        mut ready: impl FnMut(u16) -> bool,
    ) {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}; {}", crate::START_HINT));
        self.child = Some(child);
        let deadline = Instant::now() + wait;
        while !ready(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{name} exited early with {status} (port {})", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not answer on port {} within {wait:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process, if one runs; the port stays this server's.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}
