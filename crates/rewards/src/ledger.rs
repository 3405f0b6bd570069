//! The vocabulary the ledger stores: reward kinds, the once-only business key of a reward
//! and its chain transaction id, and the reward states with their legal moves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::UnknownName;

/// What a reward is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// A booking (Aurora).
    Booking,
    /// A review of a stay (Aurora).
    Review,
    /// Attendance at a community event (Tribe).
    Attendance,
    /// A community contribution (Tribe).
    Contribution,
    /// A coaching milestone (Tribe).
    Coaching,
    /// A successful referral (Tribe).
    Referral,
    /// Staking accrual (Tribe).
    Staking,
    /// Granted by an operator.
    Manual,
}

impl RewardKind {
    /// Every kind.
    pub const ALL: [RewardKind; 8] = [
        RewardKind::Booking,
        RewardKind::Review,
        RewardKind::Attendance,
        RewardKind::Contribution,
        RewardKind::Coaching,
        RewardKind::Referral,
        RewardKind::Staking,
        RewardKind::Manual,
    ];

    /// The lower-case name: `booking`, `review`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            RewardKind::Booking => "booking",
            RewardKind::Review => "review",
            RewardKind::Attendance => "attendance",
            RewardKind::Contribution => "contribution",
            RewardKind::Coaching => "coaching",
            RewardKind::Referral => "referral",
            RewardKind::Staking => "staking",
            RewardKind::Manual => "manual",
        }
    }
}

impl fmt::Display for RewardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RewardKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RewardKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownName::new("reward kind", s))
    }
}

/// What makes a reward once-only: one reward per business key, ever.
///
/// Its string form joins the components with `:` — `aurora:booking:b-1`, or
/// `tribe:attendance:ev-1:m-1` with the member — after percent-encoding `%` and `:` in
/// each, so two different keys never share a string (nor a [`tx_id`](BusinessKey::tx_id)).
///
/// ```
/// use haven_rewards::{BusinessKey, RewardKind};
///
/// let key = BusinessKey::new("tribe", RewardKind::Attendance, "ev:1", Some("m-1"));
/// assert_eq!(key.as_string(), "tribe:attendance:ev%3A1:m-1");
/// assert_eq!(key.tx_id().len(), 35);
/// assert!(key.tx_id().starts_with("rw-"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BusinessKey {
    /// The partner (`aurora`, `tribe`), or who else grants (`admin`).
    pub source: String,
    /// What the reward is for.
    pub kind: RewardKind,
    /// The partner's id of what is rewarded (booking, event, contribution, milestone, …).
    pub external_id: String,
    /// The member, where one thing rewards several members once each (event attendance,
    /// coaching milestones).
    pub member: Option<String>,
}

impl BusinessKey {
    /// A key from its parts.
    pub fn new(
        source: impl Into<String>,
        kind: RewardKind,
        external_id: impl Into<String>,
        member: Option<impl Into<String>>,
    ) -> Self {
        Self {
            source: source.into(),
            kind,
            external_id: external_id.into(),
            member: member.map(Into::into),
        }
    }

    /// `source:kind:external_id[:member]`, each component with `%` and `:` percent-encoded.
    pub fn as_string(&self) -> String {
        let mut out = String::with_capacity(
            self.source.len()
                + self.external_id.len()
                + self.member.as_ref().map_or(0, String::len)
                + 16,
        );
        escape_into(&mut out, &self.source);
        out.push(':');
        out.push_str(self.kind.as_str());
        out.push(':');
        escape_into(&mut out, &self.external_id);
        if let Some(member) = &self.member {
            out.push(':');
            escape_into(&mut out, member);
        }
        out
    }

    /// The chain transaction id of the reward: `rw-` and the first 32 hex digits of the
    /// SHA-256 of [`as_string`](BusinessKey::as_string). Deterministic, so a retried mint
    /// is the same transaction.
    pub fn tx_id(&self) -> String {
        let digest = Sha256::digest(self.as_string().as_bytes());
        format!("rw-{}", hex::encode(&digest[..16]))
    }
}

impl fmt::Display for BusinessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

fn escape_into(out: &mut String, component: &str) {
    for c in component.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// Where a reward is in its life.
///
/// ```text
/// pending ──► held ──► pending (approved) | cancelled (rejected)
///    │ ──► submitted ──► confirmed ──► reversed
///    │          └──► failed_needs_review ──► submitted (operator retry) | cancelled
///    └──► cancelled
/// ```
/// Nothing leaves `reversed` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardState {
    /// Decided, not yet sent to the chain.
    Pending,
    /// Held for a review (fraud rules, limits) before it may be sent.
    Held,
    /// Its mint was handed to the chain.
    Submitted,
    /// Its mint is confirmed on chain.
    Confirmed,
    /// A confirmed reward taken back (the booking was cancelled).
    Reversed,
    /// Never minted and never will be.
    Cancelled,
    /// The mint failed; an operator decides.
    FailedNeedsReview,
}

impl RewardState {
    /// Every state.
    pub const ALL: [RewardState; 7] = [
        RewardState::Pending,
        RewardState::Held,
        RewardState::Submitted,
        RewardState::Confirmed,
        RewardState::Reversed,
        RewardState::Cancelled,
        RewardState::FailedNeedsReview,
    ];

    /// The snake_case name: `pending`, …, `failed_needs_review`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RewardState::Pending => "pending",
            RewardState::Held => "held",
            RewardState::Submitted => "submitted",
            RewardState::Confirmed => "confirmed",
            RewardState::Reversed => "reversed",
            RewardState::Cancelled => "cancelled",
            RewardState::FailedNeedsReview => "failed_needs_review",
        }
    }

    /// Whether a reward in this state may move to `next`.
    pub const fn can_move_to(self, next: RewardState) -> bool {
        use RewardState::*;
        matches!(
            (self, next),
            (Pending, Held | Submitted | Cancelled)
                | (Held, Pending | Cancelled)
                | (Submitted, Confirmed | FailedNeedsReview)
                | (FailedNeedsReview, Submitted | Cancelled)
                | (Confirmed, Reversed)
        )
    }

    /// Whether nothing leaves this state.
    pub const fn is_final(self) -> bool {
        matches!(self, RewardState::Reversed | RewardState::Cancelled)
    }
}

impl fmt::Display for RewardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RewardState {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RewardState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownName::new("reward state", s))
    }
}
