use std::process::Command;
use std::time::Duration;

use crate::local_server::LocalServer;

/// A private `redis-server` on a free port, for tests that must stop and restart Redis
/// without disturbing the shared server other tests use. Killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    server: LocalServer,
}

impl RedisServer {
    /// Starts a server (no persistence) and waits until it accepts connections.
    pub fn spawn() -> Self {
        let mut server = Self {
            server: LocalServer::on_free_port(),
        };
        server.start();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        url(self.port())
    }

    /// The port (kept across [`RedisServer::stop`] / [`RedisServer::restart`]).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Kills the server; connections to [`RedisServer::url`] are refused until `restart`.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts an empty server on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    fn start(&mut self) {
        let command = |port: u16| {
            let mut command = Command::new("redis-server");
            command
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
            command
        };
        self.server
            .start("redis-server", command, Duration::from_secs(10), |port| {
                redis::Client::open(url(port))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                    .is_ok()
            });
    }
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}
