//! The relay's bookkeeping across rounds: which guardian is which participant, the key
//! generations and signing jobs in progress, retries of timed-out attempts within a cap, and
//! what to push to whom. Public data only, like the rounds it drives.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::{
    Commitment, DkgEnvelope, DkgRound, DkgRound1, GroupKey, Participant, RoundId, SessionId,
    SignatureShare, SigningAttempts, SigningPhase, SigningRound, ThresholdError,
};
use crate::types::{GuardianId, VaultId};

/// A vault's threshold key as the server keeps it: the group key and which guardian is
/// which participant. Public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultKey {
    /// The vault.
    pub vault: VaultId,
    /// The group key.
    pub group: GroupKey,
    /// Participant numbers of the guardians who hold shares.
    pub members: BTreeMap<Participant, GuardianId>,
}

/// A guardian's place in a key generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its number.
    pub participant: Participant,
    /// The guardian.
    pub guardian_id: GuardianId,
    /// Its ed25519 device key, hex (round-1 messages are signed with it).
    pub device_key: String,
}

/// Who a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every connected guardian of the vault.
    Vault(VaultId),
    /// One guardian.
    Guardian(VaultId, GuardianId),
}

/// What the coordinator tells guardians; the transport wraps it in its own frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "relay", rename_all = "snake_case")]
pub enum Relay {
    /// A key generation starts: each member sends its round-1 message.
    DkgStart {
        /// The key generation.
        session: SessionId,
        /// Signers the key will need.
        threshold: u16,
        /// The participants.
        members: Vec<Member>,
        /// When it times out.
        deadline: DateTime<Utc>,
    },
    /// Every round-1 message: each member sends its envelopes.
    DkgRound1All {
        /// The key generation.
        session: SessionId,
        /// By sender.
        messages: BTreeMap<Participant, DkgRound1>,
    },
    /// The envelopes addressed to one member: it finishes and reports the group key.
    DkgShares {
        /// The key generation.
        session: SessionId,
        /// Addressed to the recipient.
        envelopes: Vec<DkgEnvelope>,
    },
    /// Every member reported the same group key.
    DkgComplete {
        /// The key generation.
        session: SessionId,
        /// The key.
        group_key: GroupKey,
    },
    /// A signing attempt starts: each signer commits.
    SignStart {
        /// The attempt.
        round: RoundId,
        /// Who signs.
        signers: BTreeSet<Participant>,
        /// What is signed, hex.
        message: String,
    },
    /// Every signer committed: each signs the package.
    SignPackage {
        /// The package.
        package: super::SigningPackage,
    },
    /// The aggregate signature, verified against the group key.
    SignComplete {
        /// The attempt that produced it.
        round: RoundId,
        /// The 64-byte ed25519 signature, hex.
        signature: String,
    },
    /// A key generation or signing attempt failed.
    RoundFailed {
        /// Its session.
        session: SessionId,
        /// The attempt (signing only).
        attempt: Option<u32>,
        /// Why.
        reason: String,
        /// Whether another attempt follows.
        retrying: bool,
    },
}

/// A message for a target.
pub type Push = (Target, Relay);

/// Where a job stands, for its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobStatus {
    /// Still running.
    Running {
        /// The current attempt (signing) or 1.
        attempt: u32,
        /// Participants not heard from in the current step.
        missing: BTreeSet<Participant>,
    },
    /// A key generation completed.
    KeyReady {
        /// The key.
        key: VaultKey,
    },
    /// A signing job completed.
    Signed {
        /// The attempt that signed.
        attempt: u32,
        /// The signature, hex.
        signature: String,
    },
    /// It failed for good.
    Failed {
        /// Why.
        reason: String,
    },
}

struct Dkg {
    vault: VaultId,
    round: DkgRound,
    members: BTreeMap<Participant, GuardianId>,
    started: DateTime<Utc>,
}

struct Signing {
    key: VaultKey,
    message: Vec<u8>,
    attempts: SigningAttempts,
    excluded: BTreeSet<Participant>,
    round: SigningRound,
    started: DateTime<Utc>,
}

/// Key generations and signing jobs in progress, and their outcomes.
pub struct Coordinator {
    timeout: Duration,
    attempt_cap: u32,
    dkgs: HashMap<SessionId, Dkg>,
    signings: HashMap<SessionId, Signing>,
    done: HashMap<SessionId, JobStatus>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("timeout", &self.timeout)
            .field("attempt_cap", &self.attempt_cap)
            .field("dkgs", &self.dkgs.len())
            .field("signings", &self.signings.len())
            .finish()
    }
}

/// What an accepted message led to: pushes, and a finished job.
#[derive(Debug, Default)]
pub struct Step {
    /// Messages to relay.
    pub pushes: Vec<Push>,
    /// A key generation that completed (to store).
    pub key: Option<VaultKey>,
    /// A signing job that completed, with its round duration in seconds.
    pub signed: Option<(SessionId, f64)>,
}

impl Coordinator {
    /// Rounds time out after `timeout`; a signing job makes at most `attempt_cap` attempts.
    pub fn new(timeout: Duration, attempt_cap: u32) -> Self {
        Self {
            timeout,
            attempt_cap,
            dkgs: HashMap::new(),
            signings: HashMap::new(),
            done: HashMap::new(),
        }
    }

    /// Starts a key generation among `guardians` (numbered in the given order from 1) with
    /// threshold `t`.
    pub fn start_dkg(
        &mut self,
        vault: VaultId,
        guardians: &[(GuardianId, VerifyingKey)],
        threshold: u16,
        now: DateTime<Utc>,
    ) -> Result<(SessionId, Step), ThresholdError> {
        let session = SessionId::generate();
        let numbered: Vec<(Participant, GuardianId, VerifyingKey)> = (1u16..)
            .zip(guardians)
            .map(|(i, (g, k))| (Participant(i), *g, *k))
            .collect();
        let deadline = now + self.timeout;
        let keys = numbered.iter().map(|(p, _, k)| (*p, *k)).collect();
        let round = DkgRound::new(session, threshold, keys, deadline)?;
        let members = numbered.iter().map(|(p, g, _)| (*p, *g)).collect();
        let listed = numbered
            .iter()
            .map(|(p, g, k)| Member {
                participant: *p,
                guardian_id: *g,
                device_key: hex::encode(k.as_bytes()),
            })
            .collect();
        self.dkgs.insert(
            session,
            Dkg {
                vault,
                round,
                members,
                started: now,
            },
        );
        let start = Relay::DkgStart {
            session,
            threshold,
            members: listed,
            deadline,
        };
        let step = Step {
            pushes: vec![(Target::Vault(vault), start)],
            ..Step::default()
        };
        Ok((session, step))
    }

    fn dkg_member(
        &mut self,
        session: SessionId,
        guardian: GuardianId,
    ) -> Result<(&mut Dkg, Participant), ThresholdError> {
        let dkg = self
            .dkgs
            .get_mut(&session)
            .ok_or(ThresholdError::WrongSession)?;
        let me = member_of(&dkg.members, guardian)?;
        Ok((dkg, me))
    }

    /// A guardian's round-1 message.
    pub fn dkg_round1(
        &mut self,
        guardian: GuardianId,
        message: DkgRound1,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        let session = message.session;
        let (dkg, me) = self.dkg_member(session, guardian)?;
        let mut step = Step::default();
        if let Some(messages) = dkg.round.accept_round1(me, message, now)? {
            let all = Relay::DkgRound1All { session, messages };
            step.pushes.push((Target::Vault(dkg.vault), all));
        }
        Ok(step)
    }

    /// A guardian's envelopes, one per peer.
    pub fn dkg_round2(
        &mut self,
        guardian: GuardianId,
        session: SessionId,
        envelopes: Vec<DkgEnvelope>,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        let (dkg, me) = self.dkg_member(session, guardian)?;
        let mut step = Step::default();
        if let Some(by_recipient) = dkg.round.accept_round2(me, envelopes, now)? {
            for (to, envelopes) in by_recipient {
                if let Some(g) = dkg.members.get(&to) {
                    let shares = Relay::DkgShares { session, envelopes };
                    step.pushes.push((Target::Guardian(dkg.vault, *g), shares));
                }
            }
        }
        Ok(step)
    }

    /// A guardian's report of the group key; once all agree, the key is ready.
    pub fn dkg_result(
        &mut self,
        guardian: GuardianId,
        session: SessionId,
        group_key: GroupKey,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        let (dkg, me) = self.dkg_member(session, guardian)?;
        let mut step = Step::default();
        if let Some(group) = dkg.round.accept_result(me, group_key, now)? {
            let key = VaultKey {
                vault: dkg.vault,
                group: group.clone(),
                members: dkg.members.clone(),
            };
            let vault = dkg.vault;
            self.dkgs.remove(&session);
            self.done
                .insert(session, JobStatus::KeyReady { key: key.clone() });
            let complete = Relay::DkgComplete {
                session,
                group_key: group,
            };
            step.pushes.push((Target::Vault(vault), complete));
            step.key = Some(key);
        }
        Ok(step)
    }

    /// Starts a signing job of `message` under `key` by every member but `unavailable`.
    pub fn start_signing(
        &mut self,
        key: VaultKey,
        message: Vec<u8>,
        unavailable: &BTreeSet<GuardianId>,
        now: DateTime<Utc>,
    ) -> Result<(SessionId, Step), ThresholdError> {
        let session = SessionId::generate();
        let excluded: BTreeSet<Participant> = key
            .members
            .iter()
            .filter(|(_, g)| unavailable.contains(g))
            .map(|(p, _)| *p)
            .collect();
        let mut attempts = SigningAttempts::new(self.attempt_cap);
        let attempt = attempts.next_attempt()?;
        let round = self.attempt(&key, &message, session, attempt, &excluded, now)?;
        let start = start_of(&round);
        let vault = key.vault;
        self.signings.insert(
            session,
            Signing {
                key,
                message,
                attempts,
                excluded,
                round,
                started: now,
            },
        );
        let step = Step {
            pushes: vec![(Target::Vault(vault), start)],
            ..Step::default()
        };
        Ok((session, step))
    }

    fn attempt(
        &self,
        key: &VaultKey,
        message: &[u8],
        session: SessionId,
        attempt: u32,
        excluded: &BTreeSet<Participant>,
        now: DateTime<Utc>,
    ) -> Result<SigningRound, ThresholdError> {
        let signers: BTreeSet<Participant> = key
            .members
            .keys()
            .filter(|p| !excluded.contains(p))
            .copied()
            .collect();
        SigningRound::new(
            RoundId { session, attempt },
            key.group.clone(),
            message.to_vec(),
            signers,
            now + self.timeout,
        )
    }

    fn signing_member(
        &mut self,
        session: SessionId,
        guardian: GuardianId,
    ) -> Result<(&mut Signing, Participant), ThresholdError> {
        let job = self
            .signings
            .get_mut(&session)
            .ok_or(ThresholdError::WrongSession)?;
        let me = member_of(&job.key.members, guardian)?;
        Ok((job, me))
    }

    /// A signer's commitment.
    pub fn commitment(
        &mut self,
        guardian: GuardianId,
        commitment: Commitment,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        let (job, me) = self.signing_member(commitment.round.session, guardian)?;
        let mut step = Step::default();
        if let Some(package) = job.round.accept_commitment(me, commitment, now)? {
            for p in job.round.signers() {
                if let Some(g) = job.key.members.get(p) {
                    let relay = Relay::SignPackage {
                        package: package.clone(),
                    };
                    step.pushes
                        .push((Target::Guardian(job.key.vault, *g), relay));
                }
            }
        }
        Ok(step)
    }

    /// A signer's signature share; the last one completes the job.
    pub fn share(
        &mut self,
        guardian: GuardianId,
        share: SignatureShare,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        let session = share.round.session;
        let (job, me) = self.signing_member(session, guardian)?;
        let mut step = Step::default();
        if let Some(signature) = job.round.accept_share(me, share, now)? {
            let round = job.round.round();
            let vault = job.key.vault;
            let took = seconds(now - job.started);
            self.signings.remove(&session);
            let signature = hex::encode(signature);
            self.done.insert(
                session,
                JobStatus::Signed {
                    attempt: round.attempt,
                    signature: signature.clone(),
                },
            );
            let complete = Relay::SignComplete { round, signature };
            step.pushes.push((Target::Vault(vault), complete));
            step.signed = Some((session, took));
        }
        Ok(step)
    }

    /// Ends what timed out at `now`: a key generation fails; a signing attempt is retried
    /// without the signers that stayed silent while the cap and the threshold allow, else
    /// the job fails. Returns the pushes and how many rounds timed out.
    pub fn expire(&mut self, now: DateTime<Utc>) -> (Vec<Push>, usize) {
        let mut pushes = Vec::new();
        let mut timeouts = 0;
        let late: Vec<SessionId> = self
            .dkgs
            .iter()
            .filter(|(_, d)| d.round.phase(now) == super::DkgPhase::TimedOut)
            .map(|(s, _)| *s)
            .collect();
        for session in late {
            if let Some(dkg) = self.dkgs.remove(&session) {
                timeouts += 1;
                let reason = format!(
                    "key generation timed out waiting for {:?}",
                    dkg.round.missing()
                );
                self.done.insert(
                    session,
                    JobStatus::Failed {
                        reason: reason.clone(),
                    },
                );
                let failed = Relay::RoundFailed {
                    session,
                    attempt: None,
                    reason,
                    retrying: false,
                };
                pushes.push((Target::Vault(dkg.vault), failed));
            }
        }
        let late: Vec<SessionId> = self
            .signings
            .iter()
            .filter(|(_, j)| {
                matches!(
                    j.round.phase(now),
                    SigningPhase::TimedOut | SigningPhase::Failed
                )
            })
            .map(|(s, _)| *s)
            .collect();
        for session in late {
            timeouts += 1;
            pushes.extend(self.retry(session, now));
        }
        (pushes, timeouts)
    }

    fn retry(&mut self, session: SessionId, now: DateTime<Utc>) -> Vec<Push> {
        let Some(mut job) = self.signings.remove(&session) else {
            return Vec::new();
        };
        let attempt = job.round.round().attempt;
        let silent = job.round.missing();
        job.excluded.extend(silent.iter().copied());
        let vault = job.key.vault;
        let next = job
            .attempts
            .next_attempt()
            .and_then(|n| self.attempt(&job.key, &job.message, session, n, &job.excluded, now));
        let reason = format!("attempt {attempt} failed; silent or bad signers {silent:?}");
        match next {
            Ok(round) => {
                let start = start_of(&round);
                job.round = round;
                self.signings.insert(session, job);
                let failed = Relay::RoundFailed {
                    session,
                    attempt: Some(attempt),
                    reason,
                    retrying: true,
                };
                vec![
                    (Target::Vault(vault), failed),
                    (Target::Vault(vault), start),
                ]
            }
            Err(e) => {
                let reason = format!("{reason}; no further attempt: {e}");
                self.done.insert(
                    session,
                    JobStatus::Failed {
                        reason: reason.clone(),
                    },
                );
                let failed = Relay::RoundFailed {
                    session,
                    attempt: Some(attempt),
                    reason,
                    retrying: false,
                };
                vec![(Target::Vault(vault), failed)]
            }
        }
    }

    /// Where a job stands (`None`: unknown session).
    pub fn status(&self, session: SessionId, now: DateTime<Utc>) -> Option<JobStatus> {
        if let Some(done) = self.done.get(&session) {
            return Some(done.clone());
        }
        if let Some(dkg) = self.dkgs.get(&session) {
            let _ = dkg.round.phase(now);
            return Some(JobStatus::Running {
                attempt: 1,
                missing: dkg.round.missing(),
            });
        }
        self.signings.get(&session).map(|job| JobStatus::Running {
            attempt: job.round.round().attempt,
            missing: job.round.missing(),
        })
    }

    /// How long the job `session` has run, in seconds, if it runs.
    pub fn age(&self, session: SessionId, now: DateTime<Utc>) -> Option<f64> {
        self.dkgs
            .get(&session)
            .map(|d| seconds(now - d.started))
            .or_else(|| {
                self.signings
                    .get(&session)
                    .map(|j| seconds(now - j.started))
            })
    }
}

fn member_of(
    members: &BTreeMap<Participant, GuardianId>,
    guardian: GuardianId,
) -> Result<Participant, ThresholdError> {
    members
        .iter()
        .find(|(_, g)| **g == guardian)
        .map(|(p, _)| *p)
        .ok_or(ThresholdError::InvalidParameters(
            "this guardian takes no part in the round",
        ))
}

fn start_of(round: &SigningRound) -> Relay {
    Relay::SignStart {
        round: round.round(),
        signers: round.signers().clone(),
        message: hex::encode(round.message()),
    }
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// What a guardian's device contributes to a round (the transport wraps it in its frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Contribution {
    /// Its key-generation round-1 message.
    DkgRound1 {
        /// The message.
        message: DkgRound1,
    },
    /// Its envelopes, one per peer.
    DkgRound2 {
        /// The key generation.
        session: SessionId,
        /// The envelopes.
        envelopes: Vec<DkgEnvelope>,
    },
    /// The group key it computed.
    DkgResult {
        /// The key generation.
        session: SessionId,
        /// The key.
        group_key: GroupKey,
    },
    /// Its commitment to a signing attempt.
    Commit {
        /// The commitment.
        commitment: Commitment,
    },
    /// Its signature share.
    Share {
        /// The share.
        share: SignatureShare,
    },
}

impl Coordinator {
    /// Applies a guardian's contribution.
    pub fn contribute(
        &mut self,
        guardian: GuardianId,
        contribution: Contribution,
        now: DateTime<Utc>,
    ) -> Result<Step, ThresholdError> {
        match contribution {
            Contribution::DkgRound1 { message } => self.dkg_round1(guardian, message, now),
            Contribution::DkgRound2 { session, envelopes } => {
                self.dkg_round2(guardian, session, envelopes, now)
            }
            Contribution::DkgResult { session, group_key } => {
                self.dkg_result(guardian, session, group_key, now)
            }
            Contribution::Commit { commitment } => self.commitment(guardian, commitment, now),
            Contribution::Share { share } => self.share(guardian, share, now),
        }
    }
}
