//! A guardian device's part in FROST rounds relayed by the server: it answers each relayed
//! message with its contribution, keeping its share and nonces on the device.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ed25519_dalek::{SigningKey, VerifyingKey};
use haven_vault::threshold::{
    Contribution, DeviceRng, DkgAwaitingShares, DkgParticipant, GroupKey, KeyShare, Participant,
    Relay, RoundId, SessionId, SigningNonces, ThresholdError, commit, sign,
};
use uuid::Uuid;

enum Dkg {
    Started {
        session: SessionId,
        state: DkgParticipant,
        keys: BTreeMap<Participant, VerifyingKey>,
    },
    Awaiting {
        session: SessionId,
        state: DkgAwaitingShares,
    },
}

/// The device's FROST state: an ongoing key generation, its share, its nonces.
pub struct ThresholdGuardian {
    guardian_id: Uuid,
    device: SigningKey,
    dkg: Option<Dkg>,
    share: Option<KeyShare>,
    group: Option<GroupKey>,
    nonces: HashMap<RoundId, (SigningNonces, Vec<u8>)>,
    /// Signing attempts this device stays silent in (to exercise the server's timeouts).
    pub silent_in: BTreeSet<u32>,
}

impl std::fmt::Debug for ThresholdGuardian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThresholdGuardian")
            .field("guardian_id", &self.guardian_id)
            .field("has_share", &self.share.is_some())
            .finish_non_exhaustive()
    }
}

impl ThresholdGuardian {
    /// The device of guardian `guardian_id`.
    pub fn new(guardian_id: Uuid, device: SigningKey) -> Self {
        Self {
            guardian_id,
            device,
            dkg: None,
            share: None,
            group: None,
            nonces: HashMap::new(),
            silent_in: BTreeSet::new(),
        }
    }

    /// The share, once a key generation completed.
    pub fn share(&self) -> Option<&KeyShare> {
        self.share.as_ref()
    }

    /// The group key, once a key generation completed.
    pub fn group_key(&self) -> Option<&GroupKey> {
        self.group.as_ref()
    }

    /// The contribution `relay` asks of this device, if any.
    pub fn handle(&mut self, relay: &Relay) -> Result<Option<Contribution>, ThresholdError> {
        match relay {
            Relay::DkgStart {
                session,
                threshold,
                members,
                ..
            } => self.start(*session, *threshold, members),
            Relay::DkgRound1All { session, messages } => {
                let Some(Dkg::Started {
                    session: mine,
                    state,
                    keys,
                }) = self.dkg.take()
                else {
                    return Ok(None);
                };
                if mine != *session {
                    return Err(ThresholdError::WrongSession);
                }
                let (state, envelopes) = state.receive_round1(messages, &keys)?;
                self.dkg = Some(Dkg::Awaiting {
                    session: mine,
                    state,
                });
                Ok(Some(Contribution::DkgRound2 {
                    session: mine,
                    envelopes,
                }))
            }
            Relay::DkgShares { session, envelopes } => {
                let Some(Dkg::Awaiting {
                    session: mine,
                    state,
                }) = self.dkg.take()
                else {
                    return Ok(None);
                };
                if mine != *session {
                    return Err(ThresholdError::WrongSession);
                }
                let (share, group) = state.finish(envelopes)?;
                self.share = Some(share);
                self.group = Some(group.clone());
                Ok(Some(Contribution::DkgResult {
                    session: mine,
                    group_key: group,
                }))
            }
            Relay::SignStart {
                round,
                signers,
                message,
            } => self.commit(*round, signers, message),
            Relay::SignPackage { package } => {
                let Some((nonces, expected)) = self.nonces.remove(&package.round) else {
                    return Ok(None);
                };
                if package.message()? != expected {
                    return Err(ThresholdError::InvalidParameters(
                        "the package signs another message than announced",
                    ));
                }
                let share = self
                    .share
                    .as_ref()
                    .ok_or(ThresholdError::InvalidParameters(
                        "this device holds no share",
                    ))?;
                Ok(Some(Contribution::Share {
                    share: sign(share, nonces, package)?,
                }))
            }
            _ => Ok(None),
        }
    }

    fn start(
        &mut self,
        session: SessionId,
        threshold: u16,
        members: &[haven_vault::threshold::Member],
    ) -> Result<Option<Contribution>, ThresholdError> {
        let Some(me) = members.iter().find(|m| m.guardian_id.0 == self.guardian_id) else {
            return Ok(None);
        };
        let mut keys = BTreeMap::new();
        for m in members {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&m.device_key, &mut bytes)
                .map_err(|_| ThresholdError::MalformedRelay("a device key is 64 hex digits"))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| ThresholdError::MalformedRelay("not an ed25519 device key"))?;
            keys.insert(m.participant, key);
        }
        let n = u16::try_from(members.len())
            .map_err(|_| ThresholdError::InvalidParameters("too many participants"))?;
        let (state, message) = DkgParticipant::start(
            session,
            me.participant,
            n,
            threshold,
            &self.device,
            &mut DeviceRng,
        )?;
        self.dkg = Some(Dkg::Started {
            session,
            state,
            keys,
        });
        Ok(Some(Contribution::DkgRound1 { message }))
    }

    fn commit(
        &mut self,
        round: RoundId,
        signers: &BTreeSet<Participant>,
        message: &str,
    ) -> Result<Option<Contribution>, ThresholdError> {
        let Some(share) = &self.share else {
            return Ok(None);
        };
        if !signers.contains(&share.participant()) || self.silent_in.contains(&round.attempt) {
            return Ok(None);
        }
        let message = hex::decode(message)
            .map_err(|_| ThresholdError::MalformedRelay("the message is hex"))?;
        let (nonces, commitment) = commit(share, round, &mut DeviceRng)?;
        self.nonces.insert(round, (nonces, message));
        Ok(Some(Contribution::Commit { commitment }))
    }
}
