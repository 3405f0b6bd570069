//! The guardian's side of a haven vault: a device key that never leaves the device, the
//! HTTP calls to join and keep a session, and a connection to the guardian WebSocket that
//! lists requests and signs approvals or rejections.
//!
//! The device signs what it verified itself: [`Connection::decide`] recomputes the SHA-256
//! of the request's canonical operation before signing (a server that misstates the hash
//! gets no signature).
//!
//! ```no_run
//! use ed25519_dalek::SigningKey;
//! use haven_guardian::{Guardian, connect};
//!
//! # async fn demo(vault: uuid::Uuid, code: &str) -> Result<(), haven_guardian::Error> {
//! let device = SigningKey::from_bytes(&[7; 32]); // kept in the device's key store
//! let api = "http://127.0.0.1:8080";
//! let mut guardian = Guardian::join(api, vault, code, &device, "laptop").await?;
//! let mut socket = connect(api, &guardian.tokens.access_token).await?;
//! for request in socket.list_requests(&guardian.tokens.access_token).await? {
//!     let answer = socket
//!         .decide(&guardian.tokens.access_token, &device, haven_vault::DecisionKind::Approve, &request)
//!         .await?;
//!     println!("{}: {answer:?}", request.id);
//! }
//! guardian.refresh(api).await?; // a new token pair before the access token expires
//! # Ok(()) }
//! ```

pub mod threshold;

use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use futures::{SinkExt as _, StreamExt as _};
use haven_vault::DecisionKind;
use haven_vault::protocol::{
    ClientFrame, ClientMessage, FrameError, RequestView, ServerFrame, ServerMessage,
};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

/// A raw WebSocket message, for [`Connection::send_raw`].
pub use tokio_tungstenite::tungstenite::Message;

/// How long [`Connection::request`] waits for its answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong on the guardian's side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An HTTP call failed to reach the api.
    #[error("the api could not be reached: {0}")]
    Http(#[from] reqwest::Error),
    /// The api refused (its error code and message).
    #[error("{status} {code}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The api's error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The WebSocket failed (handshake refused, connection lost).
    #[error("websocket: {0}")]
    Socket(#[from] Box<tungstenite::Error>),
    /// The server closed the socket (with its code and reason, when it sent them).
    #[error("the server closed the socket ({code:?}): {reason}")]
    Closed {
        /// The close code, e.g. 1008 for a policy violation.
        code: Option<u16>,
        /// The reason.
        reason: String,
    },
    /// A frame was not what the protocol allows, or a request's hash does not match its
    /// operation (nothing was signed).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The guardian's tokens, as the api issues them.
#[derive(Clone, Deserialize)]
pub struct Tokens {
    /// The access token (carried by every frame).
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The session.
    pub session_id: Uuid,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A guardian that joined a vault.
#[derive(Debug, Clone)]
pub struct Guardian {
    /// Its id.
    pub guardian_id: Uuid,
    /// Its vault.
    pub vault_id: Uuid,
    /// Its current tokens.
    pub tokens: Tokens,
}

#[derive(Deserialize)]
struct Joined {
    guardian_id: Uuid,
    vault_id: Uuid,
    #[serde(flatten)]
    tokens: Tokens,
}

async fn answer<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await?);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    Err(Error::Refused {
        status: status.as_u16(),
        code: body["error"].as_str().unwrap_or("").to_owned(),
        message: body["message"].as_str().unwrap_or("").to_owned(),
    })
}

fn client() -> Result<reqwest::Client, Error> {
    Ok(reqwest::Client::builder().timeout(ANSWER_TIMEOUT).build()?)
}

impl Guardian {
    /// Joins `vault` with an invitation `code`, registering `device`'s public key.
    pub async fn join(
        api: &str,
        vault: Uuid,
        code: &str,
        device: &SigningKey,
        label: &str,
    ) -> Result<Self, Error> {
        let body = serde_json::json!({
            "vault_id": vault,
            "code": code,
            "device_public_key": hex::encode(device.verifying_key().as_bytes()),
            "device": label,
        });
        let response = client()?
            .post(format!("{api}/api/v1/guardian/join"))
            .json(&body)
            .send()
            .await?;
        let joined: Joined = answer(response).await?;
        Ok(Self {
            guardian_id: joined.guardian_id,
            vault_id: joined.vault_id,
            tokens: joined.tokens,
        })
    }

    /// Rotates the refresh token for a new pair.
    pub async fn refresh(&mut self, api: &str) -> Result<(), Error> {
        let response = client()?
            .post(format!("{api}/api/v1/guardian/refresh"))
            .json(&serde_json::json!({"refresh_token": self.tokens.refresh_token}))
            .send()
            .await?;
        self.tokens = answer(response).await?;
        Ok(())
    }

    /// The guardian's active sessions (as JSON objects: `id`, `device`, `created_at`, …).
    pub async fn sessions(&self, api: &str) -> Result<Vec<serde_json::Value>, Error> {
        let response = client()?
            .get(format!("{api}/api/v1/guardian/sessions"))
            .bearer_auth(&self.tokens.access_token)
            .send()
            .await?;
        answer(response).await
    }

    /// Revokes one of the guardian's sessions (its sockets close).
    pub async fn revoke_session(&self, api: &str, session: Uuid) -> Result<(), Error> {
        let response = client()?
            .delete(format!("{api}/api/v1/guardian/sessions/{session}"))
            .bearer_auth(&self.tokens.access_token)
            .send()
            .await?;
        if response.status().is_success() {
            return Ok(());
        }
        answer::<serde_json::Value>(response).await.map(|_| ())
    }
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the guardian WebSocket of the api at `api` (`http://…` or `https://…`) with an
/// access token, and reads the server's `welcome`.
pub async fn connect(api: &str, token: &str) -> Result<Connection, Error> {
    let url = format!(
        "{}/api/v1/ws/guardian",
        api.replacen("http", "ws", 1).trim_end_matches('/')
    );
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::Socket(Box::new(e)))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| Error::Socket(Box::new(tungstenite::Error::HttpFormat(e.into()))))?;
    request.headers_mut().insert("authorization", bearer);
    let (stream, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| Error::Socket(Box::new(e)))?;
    let mut connection = Connection {
        stream,
        next_id: 0,
        pushed: Vec::new(),
    };
    match connection.next_frame(ANSWER_TIMEOUT).await?.message {
        ServerMessage::Welcome { .. } => Ok(connection),
        other => Err(Error::Frame(FrameError::Malformed(format!(
            "expected welcome, got {other:?}"
        )))),
    }
}

/// An open guardian socket.
pub struct Connection {
    stream: Stream,
    next_id: u64,
    /// Frames that arrived while waiting for an answer (pushes), oldest first.
    pushed: Vec<ServerFrame>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("pending_pushes", &self.pushed.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Sends raw text (tests of the server's handling of malformed frames).
    pub async fn send_text(&mut self, text: String) -> Result<(), Error> {
        self.stream
            .send(Message::text(text))
            .await
            .map_err(|e| Error::Socket(Box::new(e)))
    }

    /// Sends any WebSocket message as it is (tests).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), Error> {
        self.stream
            .send(message)
            .await
            .map_err(|e| Error::Socket(Box::new(e)))
    }

    /// The next frame from the server (a push or an answer), answering pings on the way.
    pub async fn next_frame(&mut self, wait: Duration) -> Result<ServerFrame, Error> {
        if !self.pushed.is_empty() {
            return Ok(self.pushed.remove(0));
        }
        self.read(wait).await
    }

    async fn read(&mut self, wait: Duration) -> Result<ServerFrame, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| Error::Timeout(wait))?;
            match message {
                None => {
                    return Err(Error::Closed {
                        code: None,
                        reason: "the connection ended".into(),
                    });
                }
                Some(Err(e)) => return Err(Error::Socket(Box::new(e))),
                Some(Ok(Message::Text(text))) => return Ok(ServerFrame::parse(text.as_str())?),
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits until the server closes the socket; its close code and reason.
    pub async fn closed(&mut self, wait: Duration) -> Result<(Option<u16>, String), Error> {
        loop {
            match self.read(wait).await {
                Ok(_) => {}
                Err(Error::Closed { code, reason }) => return Ok((code, reason)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `message` under `token` and waits for the frame that answers it; pushes that
    /// arrive meanwhile are kept for [`Connection::next_frame`].
    pub async fn request(
        &mut self,
        token: &str,
        message: ClientMessage,
    ) -> Result<ServerFrame, Error> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let frame = ClientFrame::new(token, Some(id.clone()), message);
        self.send_text(frame.to_text()).await?;
        loop {
            let frame = self.read(ANSWER_TIMEOUT).await?;
            if frame.reply_to.as_deref() == Some(id.as_str()) {
                return Ok(frame);
            }
            self.pushed.push(frame);
        }
    }

    /// The vault's open requests.
    pub async fn list_requests(&mut self, token: &str) -> Result<Vec<RequestView>, Error> {
        match self
            .request(token, ClientMessage::ListRequests)
            .await?
            .message
        {
            ServerMessage::Requests { requests } => Ok(requests),
            other => Err(unexpected(other)),
        }
    }

    /// Signs and sends a decision on `request` after checking its hash; the server's answer
    /// (`decision` or `error`).
    pub async fn decide(
        &mut self,
        token: &str,
        device: &SigningKey,
        kind: DecisionKind,
        request: &RequestView,
    ) -> Result<ServerMessage, Error> {
        let signature = hex::encode(device.sign(&request.decision_message(kind)?).to_bytes());
        let message = match kind {
            DecisionKind::Approve => ClientMessage::Approve {
                request_id: request.id,
                signature,
            },
            DecisionKind::Reject => ClientMessage::Reject {
                request_id: request.id,
                signature,
            },
        };
        Ok(self.request(token, message).await?.message)
    }

    /// Closes the socket.
    pub async fn close(mut self) -> Result<(), Error> {
        self.stream
            .close(None)
            .await
            .map_err(|e| Error::Socket(Box::new(e)))
    }
}

fn closed(frame: Option<CloseFrame>) -> Error {
    match frame {
        Some(frame) => Error::Closed {
            code: Some(frame.code.into()),
            reason: frame.reason.to_string(),
        },
        None => Error::Closed {
            code: None,
            reason: String::new(),
        },
    }
}

fn unexpected(message: ServerMessage) -> Error {
    match message {
        ServerMessage::Error { code, message } => Error::Refused {
            status: 0,
            code,
            message,
        },
        other => Error::Frame(FrameError::Malformed(format!(
            "unexpected answer {other:?}"
        ))),
    }
}
