//! What can go wrong in key generation and signing, on either side.

use super::{Participant, RoundId};

/// A refused message or a failed step. Every input, however malformed, ends in one of these
/// rather than a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The number of participants, the threshold or the signer set is not usable.
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// The participant takes no part in this round (not among `1..=n`, or not a chosen
    /// signer).
    #[error("participant {0} takes no part in this round")]
    UnknownParticipant(Participant),
    /// The participant already sent this message.
    #[error("participant {0} already sent this message")]
    Duplicate(Participant),
    /// A message names another sender than the connection it came from.
    #[error("a message from participant {from} claims to be from participant {claimed}")]
    SenderMismatch {
        /// Who sent it.
        from: Participant,
        /// Whom it names.
        claimed: Participant,
    },
    /// A message of another key generation.
    #[error("the message belongs to another key generation session")]
    WrongSession,
    /// A message of another signing session or attempt.
    #[error("the message belongs to {got}, not to {expected}")]
    WrongRound {
        /// The round that received it.
        expected: RoundId,
        /// The round it names.
        got: RoundId,
    },
    /// The message is not expected at this stage of the round (e.g. a share before all
    /// commitments are in).
    #[error("this message is not expected while the round is {phase}")]
    WrongPhase {
        /// Where the round stands.
        phase: &'static str,
    },
    /// The deadline passed: the round accepts nothing more.
    #[error("the round timed out")]
    TimedOut,
    /// The round already completed.
    #[error("the round is already complete")]
    Complete,
    /// The round failed earlier (a bad share or disagreeing results); start another.
    #[error("the round failed earlier")]
    Failed,
    /// A message or one of its fields does not parse.
    #[error("malformed {what} from participant {from}")]
    Malformed {
        /// Who sent it.
        from: Participant,
        /// What did not parse.
        what: &'static str,
    },
    /// Something the server relayed (a signing package, a group key) does not parse or does
    /// not fit the group.
    #[error("malformed {0} from the server")]
    MalformedRelay(&'static str),
    /// A round-1 message is not signed by its sender's device key.
    #[error("participant {0}'s round-1 message is not signed by its device key")]
    BadDeviceSignature(Participant),
    /// No device key is registered for the participant.
    #[error("no device key for participant {0}")]
    MissingDeviceKey(Participant),
    /// A message of this participant is missing from what was relayed.
    #[error("the message of participant {0} is missing")]
    Missing(Participant),
    /// The participant's own round-1 message was not relayed as it was sent.
    #[error("our own round-1 message was not relayed as sent")]
    OwnMessageAltered,
    /// An envelope does not decrypt: not addressed to us, altered, or from another session.
    #[error("the envelope from participant {from} does not decrypt")]
    Decryption {
        /// Its sender.
        from: Participant,
    },
    /// The X25519 agreement, the key derivation or the encryption failed (e.g. a peer's
    /// exchange key is of small order).
    #[error("the key exchange with participant {with} failed")]
    KeyExchange {
        /// The peer.
        with: Participant,
    },
    /// A participant sent a secret share that does not match its public commitment.
    #[error("participant {culprit} sent an invalid secret share")]
    InvalidSecretShare {
        /// Who sent it.
        culprit: Participant,
    },
    /// Participants reported different group keys: the key generation cannot be trusted.
    #[error("participant {from} reported another group key than the others")]
    GroupKeyMismatch {
        /// The first to disagree.
        from: Participant,
    },
    /// Signature shares that do not verify against their signers' public shares.
    #[error("invalid signature share from participant(s) {}", list(.culprits))]
    InvalidSignatureShares {
        /// The signers whose shares are bad.
        culprits: Vec<Participant>,
    },
    /// The aggregate does not verify (strict ed25519) against the group key.
    #[error("the aggregate signature does not verify against the group key")]
    SignatureRejected,
    /// The nonces were made for another round or another key share.
    #[error("these nonces were made for another round or key share")]
    NoncesMismatch,
    /// The retry cap is reached.
    #[error("no attempt left: at most {cap}")]
    AttemptsExhausted {
        /// The cap.
        cap: u32,
    },
    /// The FROST implementation refused.
    #[error("FROST: {0}")]
    Frost(#[source] frost_ed25519::Error),
}

fn list(participants: &[Participant]) -> String {
    participants
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<frost_ed25519::Error> for ThresholdError {
    fn from(error: frost_ed25519::Error) -> Self {
        Self::Frost(error)
    }
}
