//! A server process of a test's own, on a local port kept across restarts.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process listening on a port picked once, so that clients configured with it
/// reach the server again after a restart. Killed by [`LocalServer::stop`] and on drop.
///
/// The servers (anvil, redis-server) bind their port themselves, so the port is free when
/// picked and may be taken by another test before the child binds it: until the first
/// start succeeds, a port that already answers or that the child could not bind is
/// replaced by a fresh one ([`START_ATTEMPTS`] times). After that the port is the
/// server's for good, since clients hold its URL.
#[derive(Debug)]
pub(crate) struct LocalServer {
    child: Option<Child>,
    port: u16,
    /// Whether a start has succeeded on `port` (which is then kept).
    settled: bool,
}

/// How many ports a first start tries before it gives up.
const START_ATTEMPTS: usize = 5;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl LocalServer {
    /// No process yet, on a port that is free now.
    pub(crate) fn on_free_port() -> Self {
        Self {
            child: None,
            port: free_port(),
            settled: false,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Runs the command `command(port)` builds (`name` in messages), its output discarded,
    /// and waits up to `wait` until `ready(port)` holds. On a first start, a port that
    /// answers before the child runs or that the child exits on (taken meanwhile) is
    /// replaced by a fresh one. Panics, with the reason, if it cannot start, exits or does
    /// not get ready in time.
    pub(crate) fn start(
        &mut self,
        name: &str,
        command: impl Fn(u16) -> Command,
        wait: Duration,
        mut ready: impl FnMut(u16) -> bool,
    ) {
        for attempt in 1..=START_ATTEMPTS {
            let last = self.settled || attempt == START_ATTEMPTS;
            if ready(self.port) {
                assert!(
                    !last,
                    "port {} of {name} is taken by another server",
                    self.port
                );
                self.port = free_port();
                continue;
            }
            match self.try_start(name, command(self.port), wait, &mut ready) {
                Ok(()) => {
                    self.settled = true;
                    return;
                }
                // most likely the port was taken between picking and binding
                Err(_) if !last => self.port = free_port(),
                Err(status) => panic!("{name} exited early with {status} (port {})", self.port),
            }
        }
    }

    /// One start on `self.port`: `Err` with the exit status when the child exited before
    /// it was ready.
    fn try_start(
        &mut self,
        name: &str,
        mut command: Command,
        wait: Duration,
        ready: &mut impl FnMut(u16) -> bool,
    ) -> Result<(), std::process::ExitStatus> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}; {}", crate::START_HINT));
        self.child = Some(child);
        let deadline = Instant::now() + wait;
        while !ready(self.port) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(status);
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not answer on port {} within {wait:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_on(port: u16) -> Command {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"]);
        command
    }

    fn answers(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    #[test]
    fn a_first_start_moves_off_a_port_taken_meanwhile_and_keeps_it_afterwards() {
        let mut server = LocalServer::on_free_port();
        let picked = server.port();
        // another test grabs the port between picking and starting
        let thief = TcpListener::bind(("127.0.0.1", picked))
            .unwrap_or_else(|e| panic!("cannot take port {picked}: {e}"));
        server.start("redis-server", redis_on, Duration::from_secs(10), answers);
        assert_ne!(server.port(), picked, "the server moved to a free port");
        assert!(server.is_running());
        let settled = server.port();
        server.stop();
        server.start("redis-server", redis_on, Duration::from_secs(10), answers);
        assert_eq!(
            server.port(),
            settled,
            "a restart keeps the port clients know"
        );
        drop(thief);
    }
}
