use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::local_server::LocalServer;

/// A local anvil node on a free port, killed when dropped.
///
/// The binary is looked up in `ANVIL_BIN`, then `.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`
/// under the workspace root (where `scripts/services.sh` installs it), then `PATH`.
#[derive(Debug)]
pub struct Anvil {
    server: LocalServer,
    args: Vec<String>,
}

impl Anvil {
    /// Chain id of a default anvil.
    pub const CHAIN_ID: u64 = 31337;

    /// anvil's ten funded development keys (mnemonic `test test … junk`), hex without `0x`.
    pub const DEV_PRIVATE_KEYS: [&'static str; 10] = [
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
        "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
        "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
        "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
        "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d20b15c6b6b",
        "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    ];

    /// The addresses of [`Anvil::DEV_PRIVATE_KEYS`], EIP-55.
    pub const DEV_ADDRESSES: [&'static str; 10] = [
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    ];

    /// Starts a default anvil (automine on) on a free port and waits until it answers.
    pub fn spawn() -> Self {
        Self::spawn_with_args(&[])
    }

    /// Starts anvil with extra arguments, e.g. `["--no-mining"]` or `["--block-time", "1"]`.
    ///
    /// Also installs rustls's ring provider for the process (the workspace builds reqwest
    /// without one), so alloy HTTP clients pointed at the node work.
    pub fn spawn_with_args(args: &[&str]) -> Self {
        crate::install_crypto_provider();
        let mut anvil = Self {
            server: LocalServer::on_free_port(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        };
        anvil.start();
        anvil
    }

    /// The HTTP JSON-RPC endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The port anvil listens on (kept across [`Anvil::stop`] / [`Anvil::restart`]).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Kills the node (its state is lost); the port stays reserved for [`Anvil::restart`].
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts a fresh node on the same port after [`Anvil::stop`].
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Whether the node is running.
    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }

    /// Sends one JSON-RPC request and returns the `result` (panics on transport errors).
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        rpc_call(self.port(), method, &params)
            .unwrap_or_else(|e| panic!("anvil rpc {method} failed: {e}"))
    }

    fn start(&mut self) {
        let bin = binary();
        let args = self.args.clone();
        let command = |port: u16| {
            let mut command = Command::new(&bin);
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .arg("--silent")
                .args(&args);
            command
        };
        self.server.start(
            &format!("anvil ({})", bin.display()),
            command,
            Duration::from_secs(20),
            |port| rpc_call(port, "eth_chainId", &serde_json::json!([])).is_ok(),
        );
    }
}

fn binary() -> PathBuf {
    if let Ok(bin) = std::env::var("ANVIL_BIN") {
        return PathBuf::from(bin);
    }
    let local =
        crate::workspace_root().join(".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if local.exists() {
        return local;
    }
    PathBuf::from("anvil")
}

fn rpc_call(
    port: u16,
    method: &str,
    params: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let json_start = response.find("\r\n\r\n").ok_or("no body")? + 4;
    let value: serde_json::Value =
        serde_json::from_str(response[json_start..].trim()).map_err(|e| e.to_string())?;
    if let Some(err) = value.get("error") {
        return Err(err.to_string());
    }
    Ok(value
        .get("result")
        .cloned()
        .unwrap_or(serde_json::Value::Null))
}
