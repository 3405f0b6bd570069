//! The server's side of one signing attempt: commitments in, signing package out, shares
//! in, one verified ed25519 signature out; and the cap on attempts per request.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use frost_ed25519::keys::PublicKeyPackage;
use frost_ed25519::round1::SigningCommitments;
use frost_ed25519::round2;
use frost_ed25519::{CheaterDetection, Identifier};
use serde::{Deserialize, Serialize, Serializer};

use super::wire::{Commitment, GroupKey, SignatureShare, SigningPackage, base64_bytes, hex_array};
use super::{Participant, RoundId, ThresholdError, participant_of};

/// Where a signing attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningPhase {
    /// Collecting the signers' commitments.
    Committing,
    /// The package is out; collecting signature shares.
    Signing,
    /// The signature is aggregated and verified.
    Complete,
    /// A share was bad (or the aggregate did not verify): start another attempt.
    Failed,
    /// The deadline passed before completion: start another attempt.
    TimedOut,
}

impl SigningPhase {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningPhase::Committing => "committing",
            SigningPhase::Signing => "signing",
            SigningPhase::Complete => "complete",
            SigningPhase::Failed => "failed",
            SigningPhase::TimedOut => "timed_out",
        }
    }
}

/// The server's bookkeeping of one signing attempt by a chosen set of signers. Holds only
/// public data (commitments, the package, signature shares, the result). Serialises for
/// inspection and audit.
#[derive(Debug, Clone, Serialize)]
pub struct SigningRound {
    round: RoundId,
    group: GroupKey,
    #[serde(with = "base64_bytes")]
    message: Vec<u8>,
    signers: BTreeSet<Participant>,
    deadline: DateTime<Utc>,
    phase: SigningPhase,
    commitments: BTreeMap<Participant, Commitment>,
    package: Option<SigningPackage>,
    shares: BTreeMap<Participant, SignatureShare>,
    #[serde(serialize_with = "hex_signature")]
    signature: Option<[u8; 64]>,
    #[serde(skip)]
    public: PublicKeyPackage,
    #[serde(skip)]
    verifying_key: VerifyingKey,
}

impl SigningRound {
    /// An attempt `round` (attempt ≥ 1) to have `signers` (at least the group's threshold,
    /// all members of the group) sign `message` under `group`, open until `deadline`.
    pub fn new(
        round: RoundId,
        group: GroupKey,
        message: Vec<u8>,
        signers: BTreeSet<Participant>,
        deadline: DateTime<Utc>,
    ) -> Result<Self, ThresholdError> {
        let invalid = ThresholdError::InvalidParameters;
        if round.attempt == 0 {
            return Err(invalid("attempts count from 1"));
        }
        let (n, t) = group
            .shape()
            .ok_or(invalid("the group key does not parse"))?;
        let (public, verifying_key) = group
            .parse(n, t)
            .ok_or(invalid("the group key does not parse"))?;
        if signers.len() < usize::from(t) {
            return Err(invalid("fewer signers than the threshold"));
        }
        if let Some(stranger) = signers.iter().find(|p| !(1..=n).contains(&p.0)) {
            return Err(ThresholdError::UnknownParticipant(*stranger));
        }
        Ok(Self {
            round,
            group,
            message,
            signers,
            deadline,
            phase: SigningPhase::Committing,
            commitments: BTreeMap::new(),
            package: None,
            shares: BTreeMap::new(),
            signature: None,
            public,
            verifying_key,
        })
    }

    /// The attempt.
    pub fn round(&self) -> RoundId {
        self.round
    }

    /// The chosen signers.
    pub fn signers(&self) -> &BTreeSet<Participant> {
        &self.signers
    }

    /// The message being signed.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Until when messages are accepted.
    pub fn deadline(&self) -> DateTime<Utc> {
        self.deadline
    }

    /// Where the attempt stands at `now` (past the deadline, an unfinished attempt is
    /// [`SigningPhase::TimedOut`]).
    pub fn phase(&self, now: DateTime<Utc>) -> SigningPhase {
        match self.phase {
            SigningPhase::Committing | SigningPhase::Signing if now >= self.deadline => {
                SigningPhase::TimedOut
            }
            phase => phase,
        }
    }

    /// The verified signature, once complete.
    pub fn signature(&self) -> Option<[u8; 64]> {
        self.signature
    }

    /// The signers whose commitment (before the package went out) or share (after) is
    /// not in: whom a timed-out attempt waited for, to leave out of the retry.
    pub fn missing(&self) -> BTreeSet<Participant> {
        if self.phase == SigningPhase::Complete {
            return BTreeSet::new();
        }
        self.signers
            .iter()
            .filter(|p| match self.package {
                None => !self.commitments.contains_key(p),
                Some(_) => !self.shares.contains_key(p),
            })
            .copied()
            .collect()
    }

    /// Refuses a message unless the attempt is in `expected` before its deadline, the
    /// message belongs to this attempt and `from` is a chosen signer it names.
    fn admit(
        &mut self,
        from: Participant,
        (round, claimed): (RoundId, Participant),
        expected: SigningPhase,
        now: DateTime<Utc>,
    ) -> Result<(), ThresholdError> {
        match self.phase {
            SigningPhase::Complete => return Err(ThresholdError::Complete),
            SigningPhase::Failed => return Err(ThresholdError::Failed),
            SigningPhase::TimedOut => return Err(ThresholdError::TimedOut),
            SigningPhase::Committing | SigningPhase::Signing => {}
        }
        if now >= self.deadline {
            self.phase = SigningPhase::TimedOut;
            return Err(ThresholdError::TimedOut);
        }
        if round != self.round {
            return Err(ThresholdError::WrongRound {
                expected: self.round,
                got: round,
            });
        }
        if self.phase != expected {
            return Err(ThresholdError::WrongPhase {
                phase: self.phase.as_str(),
            });
        }
        if !self.signers.contains(&from) {
            return Err(ThresholdError::UnknownParticipant(from));
        }
        if claimed != from {
            return Err(ThresholdError::SenderMismatch { from, claimed });
        }
        Ok(())
    }

    /// Accepts `from`'s commitment. Returns the [`SigningPackage`] (to send to every
    /// signer) once every chosen signer committed.
    pub fn accept_commitment(
        &mut self,
        from: Participant,
        commitment: Commitment,
        now: DateTime<Utc>,
    ) -> Result<Option<SigningPackage>, ThresholdError> {
        self.admit(
            from,
            (commitment.round, commitment.from),
            SigningPhase::Committing,
            now,
        )?;
        if self.commitments.contains_key(&from) {
            return Err(ThresholdError::Duplicate(from));
        }
        SigningCommitments::deserialize(&commitment.commitments).map_err(|_| {
            ThresholdError::Malformed {
                from,
                what: "signing commitments",
            }
        })?;
        self.commitments.insert(from, commitment);
        if self.commitments.len() < self.signers.len() {
            return Ok(None);
        }
        let mut all = BTreeMap::new();
        for (signer, commitment) in &self.commitments {
            let parsed = SigningCommitments::deserialize(&commitment.commitments)?;
            all.insert(signer.identifier()?, parsed);
        }
        let package = SigningPackage {
            round: self.round,
            package: frost_ed25519::SigningPackage::new(all, &self.message).serialize()?,
        };
        self.phase = SigningPhase::Signing;
        self.package = Some(package.clone());
        Ok(Some(package))
    }

    /// Accepts `from`'s signature share. Once every chosen signer's share is in, aggregates
    /// them, verifies the result against the group key (strict ed25519) and returns the
    /// 64-byte signature. A share that does not verify fails the attempt and is named
    /// ([`ThresholdError::InvalidSignatureShares`]).
    pub fn accept_share(
        &mut self,
        from: Participant,
        share: SignatureShare,
        now: DateTime<Utc>,
    ) -> Result<Option<[u8; 64]>, ThresholdError> {
        self.admit(from, (share.round, share.from), SigningPhase::Signing, now)?;
        if self.shares.contains_key(&from) {
            return Err(ThresholdError::Duplicate(from));
        }
        round2::SignatureShare::deserialize(&share.share).map_err(|_| {
            ThresholdError::Malformed {
                from,
                what: "signature share",
            }
        })?;
        self.shares.insert(from, share);
        if self.shares.len() < self.signers.len() {
            return Ok(None);
        }
        match self.aggregate() {
            Ok(signature) => {
                self.phase = SigningPhase::Complete;
                self.signature = Some(signature);
                Ok(Some(signature))
            }
            Err(error) => {
                self.phase = SigningPhase::Failed;
                Err(error)
            }
        }
    }

    fn aggregate(&self) -> Result<[u8; 64], ThresholdError> {
        let package = self
            .package
            .as_ref()
            .ok_or(ThresholdError::WrongPhase {
                phase: self.phase.as_str(),
            })?
            .parse()?;
        let mut shares: BTreeMap<Identifier, round2::SignatureShare> = BTreeMap::new();
        for (signer, share) in &self.shares {
            shares.insert(
                signer.identifier()?,
                round2::SignatureShare::deserialize(&share.share)?,
            );
        }
        let aggregated = frost_ed25519::aggregate_custom(
            &package,
            &shares,
            &self.public,
            CheaterDetection::AllCheaters,
        )
        .map_err(|error| {
            let culprits: Vec<Participant> = error
                .culprits()
                .iter()
                .filter_map(|id| participant_of(id, self.signers.iter().copied()))
                .collect();
            if culprits.is_empty() {
                ThresholdError::Frost(error)
            } else {
                ThresholdError::InvalidSignatureShares { culprits }
            }
        })?;
        let bytes: [u8; 64] = aggregated
            .serialize()?
            .try_into()
            .map_err(|_| ThresholdError::SignatureRejected)?;
        self.verifying_key
            .verify_strict(&self.message, &Signature::from_bytes(&bytes))
            .map_err(|_| ThresholdError::SignatureRejected)?;
        Ok(bytes)
    }
}

fn hex_signature<S: Serializer>(
    signature: &Option<[u8; 64]>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match signature {
        Some(bytes) => hex_array::serialize(bytes, serializer),
        None => serializer.serialize_none(),
    }
}

/// How many attempts one request may take: a round that timed out (or failed on a bad
/// share) is retried with a new attempt number, new commitments and maybe other signers,
/// until the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningAttempts {
    cap: u32,
    used: u32,
}

impl SigningAttempts {
    /// At most `cap` attempts.
    pub fn new(cap: u32) -> Self {
        Self { cap, used: 0 }
    }

    /// The next attempt's number (1 first), or [`ThresholdError::AttemptsExhausted`] past
    /// the cap.
    pub fn next_attempt(&mut self) -> Result<u32, ThresholdError> {
        if self.used >= self.cap {
            return Err(ThresholdError::AttemptsExhausted { cap: self.cap });
        }
        self.used += 1;
        Ok(self.used)
    }

    /// Attempts handed out so far.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// The cap.
    pub fn cap(&self) -> u32 {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_stop_at_the_cap() {
        let mut attempts = SigningAttempts::new(2);
        assert_eq!(attempts.next_attempt(), Ok(1));
        assert_eq!(attempts.next_attempt(), Ok(2));
        assert_eq!(
            attempts.next_attempt(),
            Err(ThresholdError::AttemptsExhausted { cap: 2 })
        );
        assert_eq!(attempts.used(), 2);
        assert_eq!(SigningAttempts::new(0).next_attempt().ok(), None);
    }
}
