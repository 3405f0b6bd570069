//! The server's side of a key generation: which participant sent what, relaying by
//! recipient, and agreement on the result. It sees only public data and ciphertexts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::wire::{DkgEnvelope, DkgRound1, GroupKey, hex_key_map};
use super::{Participant, SessionId, ThresholdError, check_parameters};

/// The longest envelope accepted: a FROST round-2 package (a header and one 32-byte scalar)
/// and the GCM tag fit many times over.
pub const MAX_ENVELOPE_LEN: usize = 256;

/// Where a key generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DkgPhase {
    /// Collecting round-1 messages.
    Round1,
    /// Collecting every participant's envelopes.
    Round2,
    /// Collecting every participant's group key.
    Results,
    /// Everyone reported the same group key.
    Complete,
    /// Participants disagreed on the group key.
    Failed,
    /// The deadline passed before completion.
    TimedOut,
}

impl DkgPhase {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DkgPhase::Round1 => "round1",
            DkgPhase::Round2 => "round2",
            DkgPhase::Results => "results",
            DkgPhase::Complete => "complete",
            DkgPhase::Failed => "failed",
            DkgPhase::TimedOut => "timed_out",
        }
    }
}

/// The server's bookkeeping of one key generation among participants `1..=n` (the keys of
/// the device-key map). Holds only what the server may see: signed round-1 messages,
/// encrypted envelopes and group keys. Serialises for inspection and audit.
#[derive(Debug, Clone, Serialize)]
pub struct DkgRound {
    session: SessionId,
    threshold: u16,
    #[serde(with = "hex_key_map")]
    device_keys: BTreeMap<Participant, [u8; 32]>,
    deadline: DateTime<Utc>,
    phase: DkgPhase,
    round1: BTreeMap<Participant, DkgRound1>,
    round2: BTreeMap<Participant, Vec<DkgEnvelope>>,
    results: BTreeMap<Participant, GroupKey>,
    group_key: Option<GroupKey>,
}

impl DkgRound {
    /// A key generation `session` with threshold `threshold` among the participants of
    /// `device_keys` (which must be exactly `1..=n`, `2 ≤ threshold ≤ n ≤ 64`), open until
    /// `deadline`.
    pub fn new(
        session: SessionId,
        threshold: u16,
        device_keys: BTreeMap<Participant, VerifyingKey>,
        deadline: DateTime<Utc>,
    ) -> Result<Self, ThresholdError> {
        let n = u16::try_from(device_keys.len())
            .map_err(|_| ThresholdError::InvalidParameters("too many participants"))?;
        check_parameters(n, threshold)?;
        if !device_keys.keys().copied().eq(Participant::all(n)) {
            return Err(ThresholdError::InvalidParameters(
                "participants must be numbered 1..=n",
            ));
        }
        Ok(Self {
            session,
            threshold,
            device_keys: device_keys
                .into_iter()
                .map(|(p, key)| (p, key.to_bytes()))
                .collect(),
            deadline,
            phase: DkgPhase::Round1,
            round1: BTreeMap::new(),
            round2: BTreeMap::new(),
            results: BTreeMap::new(),
            group_key: None,
        })
    }

    /// The key generation's id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// `n`.
    pub fn participants(&self) -> u16 {
        u16::try_from(self.device_keys.len()).unwrap_or(u16::MAX)
    }

    /// `t`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Until when messages are accepted.
    pub fn deadline(&self) -> DateTime<Utc> {
        self.deadline
    }

    /// Where the round stands at `now` (past the deadline, an unfinished round is
    /// [`DkgPhase::TimedOut`]).
    pub fn phase(&self, now: DateTime<Utc>) -> DkgPhase {
        match self.phase {
            DkgPhase::Round1 | DkgPhase::Round2 | DkgPhase::Results if now >= self.deadline => {
                DkgPhase::TimedOut
            }
            phase => phase,
        }
    }

    /// The agreed group key, once complete.
    pub fn group_key(&self) -> Option<&GroupKey> {
        self.group_key.as_ref()
    }

    /// Who the round waits (or, timed out, waited) for in its first unfinished step.
    pub fn missing(&self) -> BTreeSet<Participant> {
        let n = self.participants();
        let sent: BTreeSet<Participant> = if self.round1.len() < usize::from(n) {
            self.round1.keys().copied().collect()
        } else if self.round2.len() < usize::from(n) {
            self.round2.keys().copied().collect()
        } else if self.results.len() < usize::from(n) && self.phase != DkgPhase::Failed {
            self.results.keys().copied().collect()
        } else {
            return BTreeSet::new();
        };
        Participant::all(n).filter(|p| !sent.contains(p)).collect()
    }

    /// Refuses a message unless the round is in `expected` before its deadline and `from`
    /// is a participant.
    fn admit(
        &mut self,
        from: Participant,
        expected: DkgPhase,
        now: DateTime<Utc>,
    ) -> Result<(), ThresholdError> {
        match self.phase {
            DkgPhase::Complete => return Err(ThresholdError::Complete),
            DkgPhase::Failed => return Err(ThresholdError::Failed),
            DkgPhase::TimedOut => return Err(ThresholdError::TimedOut),
            DkgPhase::Round1 | DkgPhase::Round2 | DkgPhase::Results => {}
        }
        if now >= self.deadline {
            self.phase = DkgPhase::TimedOut;
            return Err(ThresholdError::TimedOut);
        }
        if self.phase != expected {
            return Err(ThresholdError::WrongPhase {
                phase: self.phase.as_str(),
            });
        }
        if !self.device_keys.contains_key(&from) {
            return Err(ThresholdError::UnknownParticipant(from));
        }
        Ok(())
    }

    /// Accepts `from`'s round-1 message: it must name `from` and this session, state this
    /// round's `n` and `t`, carry an exchange key for every peer and a FROST package that
    /// parses, and be signed by `from`'s device key. Returns every round-1 message (to
    /// broadcast to all) once each participant sent one.
    pub fn accept_round1(
        &mut self,
        from: Participant,
        message: DkgRound1,
        now: DateTime<Utc>,
    ) -> Result<Option<BTreeMap<Participant, DkgRound1>>, ThresholdError> {
        self.admit(from, DkgPhase::Round1, now)?;
        if self.round1.contains_key(&from) {
            return Err(ThresholdError::Duplicate(from));
        }
        let device = self
            .device_keys
            .get(&from)
            .and_then(|bytes| VerifyingKey::from_bytes(bytes).ok())
            .ok_or(ThresholdError::MissingDeviceKey(from))?;
        let shape = (self.participants(), self.threshold);
        message.validate(from, self.session, shape, &device)?;
        self.round1.insert(from, message);
        if self.round1.len() < self.device_keys.len() {
            return Ok(None);
        }
        self.phase = DkgPhase::Round2;
        Ok(Some(self.round1.clone()))
    }

    /// Accepts `from`'s envelopes: exactly one to each other participant, each naming
    /// `from` and this session. Returns the envelopes grouped by recipient (each
    /// participant gets its own) once every participant sent theirs.
    pub fn accept_round2(
        &mut self,
        from: Participant,
        envelopes: Vec<DkgEnvelope>,
        now: DateTime<Utc>,
    ) -> Result<Option<BTreeMap<Participant, Vec<DkgEnvelope>>>, ThresholdError> {
        self.admit(from, DkgPhase::Round2, now)?;
        if self.round2.contains_key(&from) {
            return Err(ThresholdError::Duplicate(from));
        }
        let malformed = |what| ThresholdError::Malformed { from, what };
        let mut recipients = BTreeSet::new();
        for envelope in &envelopes {
            if envelope.from != from {
                return Err(ThresholdError::SenderMismatch {
                    from,
                    claimed: envelope.from,
                });
            }
            if envelope.session != self.session {
                return Err(ThresholdError::WrongSession);
            }
            if envelope.to == from || !self.device_keys.contains_key(&envelope.to) {
                return Err(malformed("envelope recipient"));
            }
            if !recipients.insert(envelope.to) {
                return Err(malformed("two envelopes for one recipient"));
            }
            if !(16..=MAX_ENVELOPE_LEN).contains(&envelope.ciphertext.len()) {
                return Err(malformed("envelope length"));
            }
        }
        if recipients.len() + 1 != self.device_keys.len() {
            return Err(malformed("envelope set (one for each peer)"));
        }
        self.round2.insert(from, envelopes);
        if self.round2.len() < self.device_keys.len() {
            return Ok(None);
        }
        self.phase = DkgPhase::Results;
        let mut by_recipient: BTreeMap<Participant, Vec<DkgEnvelope>> = BTreeMap::new();
        for envelope in self.round2.values().flatten() {
            by_recipient
                .entry(envelope.to)
                .or_default()
                .push(envelope.clone());
        }
        Ok(Some(by_recipient))
    }

    /// Accepts the group key `from` computed: it must parse as a group of this round's
    /// participants and threshold, and equal every other participant's. Returns it once
    /// every participant reported it; a disagreement fails the round.
    pub fn accept_result(
        &mut self,
        from: Participant,
        key: GroupKey,
        now: DateTime<Utc>,
    ) -> Result<Option<GroupKey>, ThresholdError> {
        self.admit(from, DkgPhase::Results, now)?;
        if self.results.contains_key(&from) {
            return Err(ThresholdError::Duplicate(from));
        }
        if key.parse(self.participants(), self.threshold).is_none() {
            return Err(ThresholdError::Malformed {
                from,
                what: "group key",
            });
        }
        if self
            .results
            .values()
            .next()
            .is_some_and(|first| *first != key)
        {
            self.phase = DkgPhase::Failed;
            return Err(ThresholdError::GroupKeyMismatch { from });
        }
        self.results.insert(from, key.clone());
        if self.results.len() < self.device_keys.len() {
            return Ok(None);
        }
        self.phase = DkgPhase::Complete;
        self.group_key = Some(key.clone());
        Ok(Some(key))
    }
}
