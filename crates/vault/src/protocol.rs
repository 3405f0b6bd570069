//! The guardian WebSocket protocol: JSON text frames between a guardian's client and the
//! server, independent of any transport library.
//!
//! Every client frame carries the guardian's access token (`token`), checked on each frame,
//! an optional correlation `id` the server echoes as `reply_to`, and a `type`:
//!
//! | `type`          | fields                          | answer                       |
//! |-----------------|---------------------------------|------------------------------|
//! | `list_requests` | —                               | `requests`                   |
//! | `approve`       | `request_id`, `signature` (hex) | `decision`                   |
//! | `reject`        | `request_id`, `signature` (hex) | `decision`                   |
//! | `ping`          | —                               | `pong`                       |
//! | `threshold`     | a FROST contribution (`step`)   | `accepted`                   |
//!
//! The server also pushes, unasked, `request_created` and `request_closed` to the vault's
//! connected guardians. A frame it cannot accept gets an `error` frame (`code` is one of the
//! api's error codes), never a dropped connection, except for the policy violations that
//! close the socket (an expired or revoked token).
//!
//! A client never signs what the server says the hash is: [`RequestView::decision_message`]
//! recomputes the SHA-256 of the canonical operation first.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::policy::{Amount, OperationKind};
use crate::signing::decision_message_for;
use crate::types::{DecisionKind, RequestId, RequestState, VaultId, VaultRequest};

/// The largest client frame the server reads by default, in bytes.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// The longest correlation id, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// A frame the server could not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Larger than the limit.
    #[error("the frame has {len} bytes; at most {max} are read")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON of a known frame shape.
    #[error("the frame is not a guardian message: {0}")]
    Malformed(String),
    /// A field has an invalid value.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A guardian's access token inside a frame. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FrameToken(String);

impl FrameToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token, to verify it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FrameToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameToken(…)")
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The vault's open requests.
    ListRequests,
    /// An approval: `signature` is the device key's ed25519 signature of the decision
    /// message, 128 hex digits.
    Approve {
        /// The request.
        request_id: RequestId,
        /// The signature, hex.
        signature: String,
    },
    /// A rejection, signed like an approval under the reject tag.
    Reject {
        /// The request.
        request_id: RequestId,
        /// The signature, hex.
        signature: String,
    },
    /// Keeps the session alive at the application level.
    Ping,
    /// The device's part in a FROST key generation or signing round
    /// ([`crate::threshold::Contribution`], tagged by `step`).
    Threshold(crate::threshold::Contribution),
}

/// One frame from a guardian client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// The guardian's access token.
    pub token: FrameToken,
    /// A correlation id the answer echoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The message.
    #[serde(flatten)]
    pub message: ClientMessage,
}

impl ClientFrame {
    /// A frame of `message` under `token`.
    pub fn new(token: impl Into<String>, id: Option<String>, message: ClientMessage) -> Self {
        Self {
            token: FrameToken::new(token),
            id,
            message,
        }
    }

    /// Reads a text frame of at most `max_bytes`, checking its shape and fields.
    pub fn parse(text: &str, max_bytes: usize) -> Result<Self, FrameError> {
        if text.len() > max_bytes {
            return Err(FrameError::TooLarge {
                len: text.len(),
                max: max_bytes,
            });
        }
        let frame: ClientFrame =
            serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))?;
        if frame
            .id
            .as_ref()
            .is_some_and(|id| id.chars().count() > MAX_ID_CHARS)
        {
            return Err(FrameError::Invalid {
                field: "id",
                message: format!("at most {MAX_ID_CHARS} characters"),
            });
        }
        if let ClientMessage::Approve { signature, .. } | ClientMessage::Reject { signature, .. } =
            &frame.message
        {
            parse_signature(signature)?;
        }
        Ok(frame)
    }

    /// The frame as JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A 64-byte ed25519 signature from its 128 hex digits.
pub fn parse_signature(hex_text: &str) -> Result<[u8; 64], FrameError> {
    let mut out = [0u8; 64];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| FrameError::Invalid {
        field: "signature",
        message: "an ed25519 signature is 128 hex digits".into(),
    })?;
    Ok(out)
}

/// A request as guardians see it: everything they sign and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    /// Its id.
    pub id: RequestId,
    /// The vault.
    pub vault_id: VaultId,
    /// What is to be done.
    pub kind: OperationKind,
    /// How much, in base units, when the operation has an amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// The canonical JSON of the operation: what the hash covers.
    pub canonical: String,
    /// SHA-256 of `canonical`, hex.
    pub hash: String,
    /// Who asked.
    pub requester: String,
    /// When it was asked.
    pub created_at: DateTime<Utc>,
    /// When it expires if still open.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub state: RequestState,
}

impl From<&VaultRequest> for RequestView {
    fn from(r: &VaultRequest) -> Self {
        Self {
            id: r.id,
            vault_id: r.vault_id,
            kind: r.operation.kind,
            amount: r.operation.amount,
            canonical: r.canonical.clone(),
            hash: r.hash_hex(),
            requester: r.requester.clone(),
            created_at: r.created_at,
            expires_at: r.expires_at,
            state: r.state,
        }
    }
}

impl RequestView {
    /// The message a device signs to decide on this request, after checking that `hash` is
    /// the SHA-256 of `canonical` (a server that lies about either is caught here).
    pub fn decision_message(&self, kind: DecisionKind) -> Result<Vec<u8>, FrameError> {
        let computed: [u8; 32] = Sha256::digest(self.canonical.as_bytes()).into();
        if hex::encode(computed) != self.hash {
            return Err(FrameError::Invalid {
                field: "hash",
                message: "is not the SHA-256 of the canonical operation".into(),
            });
        }
        Ok(decision_message_for(
            kind,
            self.vault_id,
            self.id,
            &computed,
        ))
    }
}

/// What a decision did, as the deciding guardian is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionResult {
    /// Counted; the request is still open.
    Counted,
    /// The same decision was already recorded: nothing changed.
    Duplicate,
    /// This approval released the operation.
    Released,
    /// This rejection closed the request.
    Rejected,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first frame of a connection.
    Welcome {
        /// The connected guardian.
        guardian_id: crate::types::GuardianId,
        /// Its vault.
        vault_id: VaultId,
        /// When the connecting token expires (the socket closes then unless a later
        /// frame carries a newer token).
        token_expires_at: DateTime<Utc>,
    },
    /// The vault's open requests.
    Requests {
        /// Newest first.
        requests: Vec<RequestView>,
    },
    /// A new request waits for the guardians.
    RequestCreated {
        /// The request.
        request: RequestView,
    },
    /// A request left `open`.
    RequestClosed {
        /// The request.
        request_id: RequestId,
        /// Its final state.
        state: RequestState,
    },
    /// The answer to an approval or rejection.
    Decision {
        /// The request.
        request_id: RequestId,
        /// What the decision did.
        result: DecisionResult,
        /// Approvals that count now (when known).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approvals: Option<usize>,
        /// M.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<u32>,
    },
    /// The answer to `ping`.
    Pong,
    /// A threshold contribution was taken.
    Accepted,
    /// A FROST round message relayed to the device ([`crate::threshold::Relay`], tagged by
    /// `relay`).
    Threshold(crate::threshold::Relay),
    /// A frame that was not accepted; the connection stays open.
    Error {
        /// The api's error code (`VALIDATION_ERROR`, `FORBIDDEN`, `CONFLICT`, …).
        code: String,
        /// What was wrong.
        message: String,
    },
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFrame {
    /// The `id` of the client frame this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The message.
    #[serde(flatten)]
    pub message: ServerMessage,
}

impl ServerFrame {
    /// An unsolicited frame.
    pub fn push(message: ServerMessage) -> Self {
        Self {
            reply_to: None,
            message,
        }
    }

    /// The answer to the frame with `id`.
    pub fn reply(id: Option<String>, message: ServerMessage) -> Self {
        Self {
            reply_to: id,
            message,
        }
    }

    /// An error frame.
    pub fn error(id: Option<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::reply(
            id,
            ServerMessage::Error {
                code: code.into(),
                message: message.into(),
            },
        )
    }

    /// The frame as JSON text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a server frame (what the client does).
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn frames_round_trip_and_never_debug_the_token() {
        let frame = ClientFrame::new(
            "secret.jwt.value",
            Some("7".into()),
            ClientMessage::Approve {
                request_id: RequestId::generate(),
                signature: "ab".repeat(64),
            },
        );
        let text = frame.to_text();
        assert!(text.contains(r#""type":"approve""#), "{text}");
        assert_eq!(ClientFrame::parse(&text, MAX_FRAME_BYTES).unwrap(), frame);
        assert!(!format!("{frame:?}").contains("secret.jwt.value"));
    }

    #[test]
    fn threshold_messages_with_participant_keyed_maps_survive_the_tagged_frames() {
        use crate::threshold::{Contribution, DeviceRng, DkgParticipant, Participant, Relay};
        let session = crate::threshold::SessionId::generate();
        let device = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let (_, message) =
            DkgParticipant::start(session, Participant(1), 3, 2, &device, &mut DeviceRng).unwrap();
        assert_eq!(message.exchange_keys.len(), 2);
        let frame = ClientFrame::new(
            "t",
            None,
            ClientMessage::Threshold(Contribution::DkgRound1 {
                message: message.clone(),
            }),
        );
        assert_eq!(
            ClientFrame::parse(&frame.to_text(), MAX_FRAME_BYTES).unwrap(),
            frame
        );
        let all = [(Participant(1), message)].into_iter().collect();
        let push = ServerFrame::push(ServerMessage::Threshold(Relay::DkgRound1All {
            session,
            messages: all,
        }));
        assert_eq!(ServerFrame::parse(&push.to_text()).unwrap(), push);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        let cases = [
            ("", "Malformed"),
            ("{}", "Malformed"),
            (r#"{"token":"t","type":"nope"}"#, "Malformed"),
            (
                r#"{"token":"t","type":"approve","request_id":"x","signature":"00"}"#,
                "Malformed",
            ),
        ];
        for (text, kind) in cases {
            let err = ClientFrame::parse(text, MAX_FRAME_BYTES).unwrap_err();
            assert!(format!("{err:?}").starts_with(kind), "{text}: {err:?}");
        }
        let id = uuid::Uuid::nil();
        let short =
            format!(r#"{{"token":"t","type":"reject","request_id":"{id}","signature":"00"}}"#);
        assert!(matches!(
            ClientFrame::parse(&short, MAX_FRAME_BYTES),
            Err(FrameError::Invalid {
                field: "signature",
                ..
            })
        ));
        let big = "x".repeat(MAX_FRAME_BYTES + 1);
        assert!(matches!(
            ClientFrame::parse(&big, MAX_FRAME_BYTES),
            Err(FrameError::TooLarge { .. })
        ));
    }
}
