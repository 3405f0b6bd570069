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
use haven_testkit::{StubRequest, StubResponse, StubServer};
use serde_json::{Value, json};

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

/// The transit engine's state, shared by the mock's handle and its HTTP handler.
#[derive(Default)]
struct Transit {
    keys: Mutex<HashMap<String, TransitKey>>,
    decrypts: AtomicUsize,
}

/// A running mock (the test kit's [`StubServer`]); it stops when the last clone is dropped.
#[derive(Clone)]
pub struct MockVault {
    pub address: String,
    transit: Arc<Transit>,
    _server: Arc<StubServer>,
}

impl MockVault {
    pub async fn start() -> Self {
        let transit = Arc::new(Transit::default());
        let handler = Arc::clone(&transit);
        let server = StubServer::start(move |request| handler.answer(request)).await;
        Self {
            address: server.url().to_owned(),
            transit,
            _server: Arc::new(server),
        }
    }

    /// Adds a key version, as `vault write -f transit/keys/<name>/rotate`.
    pub fn rotate(&self, name: &str) {
        self.transit
            .keys
            .lock()
            .unwrap()
            .entry(name.into())
            .or_insert_with(TransitKey::new)
            .rotate();
    }

    /// The key bytes of every version of `name` (to search logs for them).
    #[allow(dead_code)] // used by the no_leaks test binary only
    pub fn key_material(&self, name: &str) -> Vec<Vec<u8>> {
        self.transit
            .keys
            .lock()
            .unwrap()
            .get(name)
            .map(|k| k.versions.values().map(|v| v.to_vec()).collect())
            .unwrap_or_default()
    }

    /// How many `decrypt` calls succeeded.
    pub fn decrypts(&self) -> usize {
        self.transit.decrypts.load(Ordering::SeqCst)
    }
}

impl Transit {
    /// Vault's answer to one request: 403 without the token, else the route's.
    fn answer(&self, request: &StubRequest) -> StubResponse {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let (status, reply) = if request.header("x-vault-token") != Some(TOKEN) {
            (403, json!({"errors": ["permission denied"]}))
        } else {
            self.route(&request.method, request.path(), &body)
        };
        StubResponse {
            status,
            body: reply.to_string().into_bytes(),
            ..StubResponse::json("")
        }
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
