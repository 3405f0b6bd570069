//! Partner events as typed values: who sent it, what happened, to whom.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::amount::{Decimal, Hnv};

/// A partner that sends events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Aurora, the hotel property-management system: bookings and reviews.
    Aurora,
    /// Tribe, the community app: events, contributions, staking, coaching, referrals.
    Tribe,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 2] = [Source::Aurora, Source::Tribe];

    /// The lower-case name: `aurora`, `tribe`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Aurora => "aurora",
            Source::Tribe => "tribe",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a known [`Source`], [`EventName`] or other vocabulary word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`")]
pub struct UnknownName {
    /// What kind of name was looked for (`source`, `event`, …).
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

impl UnknownName {
    pub(crate) fn new(what: &'static str, name: &str) -> Self {
        Self {
            what,
            name: name.to_owned(),
        }
    }
}

impl FromStr for Source {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| UnknownName::new("source", s))
    }
}

/// The events partners send, one webhook path each (`aurora/booking-created`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventName {
    /// Aurora: a booking was made; the guest earns per unit of its price.
    BookingCreated,
    /// Aurora: the stay ended; earns nothing.
    BookingCompleted,
    /// Aurora: the booking was cancelled; its rewards are reversed.
    BookingCancelled,
    /// Aurora: the guest reviewed the stay.
    ReviewSubmitted,
    /// Tribe: a member attended (or missed) an event.
    EventAttendance,
    /// Tribe: a member contributed to the community.
    Contribution,
    /// Tribe: a member started staking HNV.
    StakingStarted,
    /// Tribe: a member reached a coaching milestone.
    CoachingMilestone,
    /// Tribe: a member's referral succeeded; the referrer earns.
    ReferralSuccess,
}

impl EventName {
    /// Every event, Aurora's first.
    pub const ALL: [EventName; 9] = [
        EventName::BookingCreated,
        EventName::BookingCompleted,
        EventName::BookingCancelled,
        EventName::ReviewSubmitted,
        EventName::EventAttendance,
        EventName::Contribution,
        EventName::StakingStarted,
        EventName::CoachingMilestone,
        EventName::ReferralSuccess,
    ];

    /// The partner that sends it.
    pub const fn source(self) -> Source {
        match self {
            EventName::BookingCreated
            | EventName::BookingCompleted
            | EventName::BookingCancelled
            | EventName::ReviewSubmitted => Source::Aurora,
            EventName::EventAttendance
            | EventName::Contribution
            | EventName::StakingStarted
            | EventName::CoachingMilestone
            | EventName::ReferralSuccess => Source::Tribe,
        }
    }

    /// The kebab-case name: `booking-created`, `event-attendance`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            EventName::BookingCreated => "booking-created",
            EventName::BookingCompleted => "booking-completed",
            EventName::BookingCancelled => "booking-cancelled",
            EventName::ReviewSubmitted => "review-submitted",
            EventName::EventAttendance => "event-attendance",
            EventName::Contribution => "contribution",
            EventName::StakingStarted => "staking-started",
            EventName::CoachingMilestone => "coaching-milestone",
            EventName::ReferralSuccess => "referral-success",
        }
    }

    /// `<source>/<name>`, as in the webhook path: `aurora/booking-created`.
    pub fn path(self) -> String {
        format!("{}/{}", self.source().as_str(), self.as_str())
    }

    /// The event `name` of `source`; `None` when either is unknown or the event belongs to
    /// the other source.
    pub fn parse(source: &str, name: &str) -> Option<EventName> {
        let source: Source = source.parse().ok()?;
        EventName::ALL
            .into_iter()
            .find(|event| event.source() == source && event.as_str() == name)
    }
}

impl fmt::Display for EventName {
    /// The [`path`](EventName::path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.source().as_str(), self.as_str())
    }
}

impl FromStr for EventName {
    type Err = UnknownName;

    /// Parses a [`path`](EventName::path): `tribe/event-attendance`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_once('/')
            .and_then(|(source, name)| EventName::parse(source, name))
            .ok_or_else(|| UnknownName::new("event", s))
    }
}

/// The member an event is about, as the partner knows them: the one who receives its
/// reward (guest, attendee, contributor, staker, coachee; the referrer for referrals).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberRef {
    /// The partner that knows the member by this id.
    pub source: Source,
    /// The partner's id of the member (1 to 128 printable characters).
    pub external_id: String,
    /// The member's e-mail address, lower-case, only when the payload marks it verified.
    pub email: Option<String>,
}

/// A validated partner event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerEvent {
    /// Which event it is.
    pub name: EventName,
    /// The member it is about.
    pub member: MemberRef,
    /// What happened, with the event's own fields.
    pub subject: EventSubject,
    /// When it happened, if the partner said.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// The fields particular to each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubject {
    /// A booking was made.
    BookingCreated {
        /// The partner's booking id.
        booking_id: String,
        /// The booking's total price, above zero.
        total_price: Decimal,
        /// ISO 4217 code in upper case; `CAD` when the payload has none.
        currency: String,
        /// Nights booked, at least one.
        nights: u32,
    },
    /// A stay ended.
    BookingCompleted {
        /// The partner's booking id.
        booking_id: String,
    },
    /// A booking was cancelled.
    BookingCancelled {
        /// The partner's booking id.
        booking_id: String,
    },
    /// A review of a stay.
    ReviewSubmitted {
        /// The booking reviewed.
        booking_id: String,
        /// Stars, 1 to 5.
        rating: u8,
    },
    /// Attendance at a community event.
    EventAttendance {
        /// The partner's event id.
        event_id: String,
        /// The event type, lower-case with `_` (`wisdom_circle`); `general` when the payload
        /// has none.
        event_type: String,
        /// Whether the member attended.
        attended: bool,
    },
    /// A community contribution.
    Contribution {
        /// The partner's contribution id.
        contribution_id: String,
        /// The quality multiplier the partner gave, not negative; `1` when the payload has
        /// none. The rules clamp it.
        quality: Decimal,
    },
    /// A member staked HNV.
    StakingStarted {
        /// The partner's stake id.
        stake_id: String,
        /// The amount staked, above zero.
        amount: Hnv,
        /// When the stake ends, if it is locked.
        ends_at: Option<DateTime<Utc>>,
    },
    /// A coaching milestone.
    CoachingMilestone {
        /// The milestone name, lower-case with `_` (`first_session`), or, when the payload
        /// gave a `level` instead, the level's digits (`"2"`): the rules map it to their
        /// milestones in order.
        milestone: String,
    },
    /// A successful referral.
    ReferralSuccess {
        /// The partner's referral id.
        referral_id: String,
        /// The tier, lower-case (`gold`); `basic` when the payload has none.
        tier: String,
    },
}

impl EventSubject {
    /// The event this subject belongs to.
    pub const fn event_name(&self) -> EventName {
        match self {
            EventSubject::BookingCreated { .. } => EventName::BookingCreated,
            EventSubject::BookingCompleted { .. } => EventName::BookingCompleted,
            EventSubject::BookingCancelled { .. } => EventName::BookingCancelled,
            EventSubject::ReviewSubmitted { .. } => EventName::ReviewSubmitted,
            EventSubject::EventAttendance { .. } => EventName::EventAttendance,
            EventSubject::Contribution { .. } => EventName::Contribution,
            EventSubject::StakingStarted { .. } => EventName::StakingStarted,
            EventSubject::CoachingMilestone { .. } => EventName::CoachingMilestone,
            EventSubject::ReferralSuccess { .. } => EventName::ReferralSuccess,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_paths() {
        for event in EventName::ALL {
            assert_eq!(event.path().parse::<EventName>(), Ok(event));
            assert_eq!(
                EventName::parse(event.source().as_str(), event.as_str()),
                Some(event)
            );
            assert_eq!(event.to_string(), event.path());
        }
        assert_eq!(EventName::parse("tribe", "booking-created"), None);
        assert_eq!(EventName::parse("aurora", "Booking-Created"), None);
        assert!("aurora".parse::<EventName>().is_err());
    }
}
