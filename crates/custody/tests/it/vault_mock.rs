//! A small, faithful stand-in for Vault's transit engine, for tests: `encrypt`, `decrypt`,
//! `rewrap`, key read, `rotate` and `config` (min_decryption_version), `X-Vault-Token`
//! checks and Vault's JSON error shape. Ciphertexts are `vault:v<N>:<base64(nonce ‖ ct ‖ tag)>`
//! under AES-256-GCM with one random key per version, as Vault's `aes256-gcm96` keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "hvs.test-root-token";

struct TransitKey {
    versions: BTreeMap<u32, [u8; 32]>,
    min_decryption_version: u32,
}

impl TransitKey {
    fn new() -> Self {
        let mut key = Self {
            versions: BTreeMap::new(),
            min_decryption_version: 1,
        };
        key.rotate();
        key
    }

    fn latest(&self) -> u32 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }

    fn rotate(&mut self) {
        let mut bytes = [0u8; 32];
        haven_custody::envelope::os_random(&mut bytes).unwrap();
        self.versions.insert(self.latest() + 1, bytes);
    }

    fn encrypt(&self, plaintext: &[u8]) -> (String, u32) {
        let version = self.latest();
        let cipher = Aes256Gcm::new_from_slice(&self.versions[&version]).unwrap();
        let mut nonce = [0u8; 12];
        haven_custody::envelope::os_random(&mut nonce).unwrap();
        let ct = cipher.encrypt(&Nonce::from(nonce), plaintext).unwrap();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        (format!("vault:v{version}:{}", B64.encode(blob)), version)
    }

    fn decrypt(&self, ciphertext: &str) -> Result<Vec<u8>, String> {
        let rest = ciphertext
            .strip_prefix("vault:v")
            .ok_or("invalid ciphertext: no prefix")?;
        let (version, body) = rest
            .split_once(':')
            .ok_or("invalid ciphertext: wrong number of fields")?;
        let version: u32 = version
            .parse()
            .map_err(|_| "invalid ciphertext: version number could not be decoded")?;
        if version < self.min_decryption_version {
            return Err("ciphertext or signature version is disallowed by policy (too old)".into());
        }
        let key = self
            .versions
            .get(&version)
            .ok_or("ciphertext or signature version is disallowed by policy (too new)")?;
        let blob = B64
            .decode(body)
            .map_err(|_| "invalid ciphertext: could not decode")?;
        if blob.len() < 12 + 16 {
            return Err("invalid ciphertext: too short".into());
        }
        let cipher = Aes256Gcm::new_from_slice(key).unwrap();
        let nonce = Nonce::try_from(&blob[..12]).unwrap();
        cipher
            .decrypt(&nonce, &blob[12..])
            .map_err(|_| "cipher: message authentication failed".into())
    }
}

/// A running mock; the server task stops when the test's runtime ends.
#[derive(Clone)]
pub struct MockVault {
    pub address: String,
    keys: Arc<Mutex<HashMap<String, TransitKey>>>,
    decrypts: Arc<AtomicUsize>,
}

impl MockVault {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let vault = Self {
            address,
            keys: Arc::default(),
            decrypts: Arc::default(),
        };
        let server = vault.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move { server.serve(stream).await });
            }
        });
        vault
    }

    /// Adds a key version, as `vault write -f transit/keys/<name>/rotate`.
    pub fn rotate(&self, name: &str) {
        self.keys
            .lock()
            .unwrap()
            .entry(name.into())
            .or_insert_with(TransitKey::new)
            .rotate();
    }

    /// The key bytes of every version of `name` (to search logs for them).
    #[allow(dead_code)] // used by the no_leaks test binary only
    pub fn key_material(&self, name: &str) -> Vec<Vec<u8>> {
        self.keys
            .lock()
            .unwrap()
            .get(name)
            .map(|k| k.versions.values().map(|v| v.to_vec()).collect())
            .unwrap_or_default()
    }

    /// How many `decrypt` calls succeeded.
    pub fn decrypts(&self) -> usize {
        self.decrypts.load(Ordering::SeqCst)
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
        let mut lines = head.lines();
        let mut request_line = lines.next().unwrap_or_default().split_whitespace();
        let method = request_line.next().unwrap_or_default().to_owned();
        let path = request_line.next().unwrap_or_default().to_owned();
        let mut content_length = 0usize;
        let mut token = None;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => content_length = value.trim().parse().unwrap_or(0),
                    "x-vault-token" => token = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        while buf.len() < header_end + content_length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value = serde_json::from_slice(&buf[header_end..header_end + content_length])
            .unwrap_or(Value::Null);
        let (status, reply) = if token.as_deref() != Some(TOKEN) {
            (403, json!({"errors": ["permission denied"]}))
        } else {
            self.route(&method, &path, &body)
        };
        let reply = reply.to_string();
        let reason = if status == 200 { "OK" } else { "Error" };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn route(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut keys = self.keys.lock().unwrap();
        let error = |status: u16, msg: &str| (status, json!({ "errors": [msg] }));
        match (method, parts.as_slice()) {
            ("POST", ["v1", "transit", "encrypt", name]) => {
                let Some(plaintext) = body["plaintext"].as_str().and_then(|p| B64.decode(p).ok())
                else {
                    return error(400, "missing plaintext to encrypt");
                };
                // Vault creates the key on first encrypt (upsert)
                let key = keys.entry((*name).into()).or_insert_with(TransitKey::new);
                let (ciphertext, version) = key.encrypt(&plaintext);
                (
                    200,
                    json!({"data": {"ciphertext": ciphertext, "key_version": version}}),
                )
            }
            ("POST", ["v1", "transit", "decrypt", name]) => {
                let Some(key) = keys.get(*name) else {
                    return error(400, "encryption key not found");
                };
                match key.decrypt(body["ciphertext"].as_str().unwrap_or_default()) {
                    Ok(plaintext) => {
                        self.decrypts.fetch_add(1, Ordering::SeqCst);
                        (200, json!({"data": {"plaintext": B64.encode(plaintext)}}))
                    }
                    Err(msg) => error(400, &msg),
                }
            }
            ("POST", ["v1", "transit", "rewrap", name]) => {
                let Some(key) = keys.get(*name) else {
                    return error(400, "encryption key not found");
                };
                match key.decrypt(body["ciphertext"].as_str().unwrap_or_default()) {
                    Ok(plaintext) => {
                        let (ciphertext, version) = key.encrypt(&plaintext);
                        (
                            200,
                            json!({"data": {"ciphertext": ciphertext, "key_version": version}}),
                        )
                    }
                    Err(msg) => error(400, &msg),
                }
            }
            ("GET", ["v1", "transit", "keys", name]) => match keys.get(*name) {
                Some(key) => (
                    200,
                    json!({"data": {
                        "name": name,
                        "type": "aes256-gcm96",
                        "latest_version": key.latest(),
                        "min_decryption_version": key.min_decryption_version,
                        "min_encryption_version": 0,
                        "keys": key.versions.keys().map(|v| (v.to_string(), 1_700_000_000)).collect::<BTreeMap<_, _>>(),
                    }}),
                ),
                None => (404, json!({"errors": []})),
            },
            ("POST", ["v1", "transit", "keys", name, "rotate"]) => {
                keys.entry((*name).into())
                    .or_insert_with(TransitKey::new)
                    .rotate();
                (200, json!({"data": {}}))
            }
            ("POST", ["v1", "transit", "keys", name, "config"]) => {
                let Some(key) = keys.get_mut(*name) else {
                    return error(400, "encryption key not found");
                };
                if let Some(min) = body["min_decryption_version"].as_u64() {
                    let min = min as u32;
                    if min > key.latest() {
                        return error(
                            400,
                            "cannot set min decryption version to a value greater than the latest version",
                        );
                    }
                    key.min_decryption_version = min.max(1);
                }
                (200, json!({"data": {}}))
            }
            _ => error(404, "unsupported path"),
        }
    }
}
