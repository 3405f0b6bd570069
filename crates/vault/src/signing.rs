//! What a guardian's device signs. The message is domain-separated (a versioned tag that
//! differs for approve and reject) and binds the vault and the request as well as the
//! operation's hash, so that a signature cannot be replayed on another request carrying the
//! same operation, in another vault, or as the opposite decision.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::types::{DecisionKind, RequestId, VaultId, VaultRequest};

/// The tag that starts every approval message.
pub const APPROVE_TAG: &[u8] = b"haven-vault/v1/approve\0";
/// The tag that starts every rejection message.
pub const REJECT_TAG: &[u8] = b"haven-vault/v1/reject\0";

/// `tag ‖ vault id (16 bytes) ‖ request id (16 bytes) ‖ SHA-256 of the operation (32 bytes)`.
pub fn decision_message(kind: DecisionKind, request: &VaultRequest) -> Vec<u8> {
    decision_message_for(kind, request.vault_id, request.id, &request.hash)
}

/// [`decision_message`] from its parts, for a client that holds a request as it was sent
/// ([`crate::protocol::RequestView`]) rather than as the store keeps it.
pub fn decision_message_for(
    kind: DecisionKind,
    vault_id: VaultId,
    request_id: RequestId,
    hash: &[u8; 32],
) -> Vec<u8> {
    let tag = match kind {
        DecisionKind::Approve => APPROVE_TAG,
        DecisionKind::Reject => REJECT_TAG,
    };
    let mut message = Vec::with_capacity(tag.len() + 64);
    message.extend_from_slice(tag);
    message.extend_from_slice(vault_id.0.as_bytes());
    message.extend_from_slice(request_id.0.as_bytes());
    message.extend_from_slice(hash);
    message
}

/// Signs a decision on the guardian's device (what the guardian client does).
pub fn sign_decision(key: &SigningKey, kind: DecisionKind, request: &VaultRequest) -> Signature {
    key.sign(&decision_message(kind, request))
}

/// Whether `signature` is `key`'s signature of the decision (strict ed25519: no malleable or
/// small-order forms).
pub fn verify_decision(
    key: &VerifyingKey,
    kind: DecisionKind,
    request: &VaultRequest,
    signature: &Signature,
) -> bool {
    key.verify_strict(&decision_message(kind, request), signature)
        .is_ok()
}
