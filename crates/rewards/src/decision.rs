//! Pricing: a validated event and the rules in, a [`Decision`] out. Pure: no clock, no
//! storage, no randomness.

use chrono::{DateTime, Utc};

use crate::amount::{Decimal, Hnv, product_hnv};
use crate::event::{EventName, EventSubject, PartnerEvent};
use crate::ledger::{BusinessKey, RewardKind};
use crate::payload::{PayloadError, parse_event};
use crate::rules::Rules;

/// What the rules decide for one event.
///
/// `reward` is true exactly when `amount` is above zero; then `kind` and `business_key`
/// are set and `effect` is [`Effect::Reward`]. Otherwise `amount` is zero, `kind` and
/// `business_key` are `None`, and `effect` says what else the ledger must do, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the event earns a reward.
    pub reward: bool,
    /// How much, in HNV (zero without a reward).
    pub amount: Hnv,
    /// What the reward is for.
    pub kind: Option<RewardKind>,
    /// The once-only key of the reward.
    pub business_key: Option<BusinessKey>,
    /// The version of the rules that decided.
    pub rules_version: String,
    /// Why, in a sentence for operators and members.
    pub reason: String,
    /// What the ledger does with the event.
    pub effect: Effect,
}

/// What the ledger does with a decided event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Record the reward under its business key (once) and mint it to the member.
    Reward,
    /// Reverse the rewards of this booking (cancelled).
    ReverseBooking {
        /// The booking.
        booking_id: String,
    },
    /// Record a stake; its accrual is paid by the staking job.
    RecordStake {
        /// The partner's stake id.
        stake_id: String,
        /// The amount staked.
        amount: Hnv,
        /// When it ends, if it is locked.
        ends_at: Option<DateTime<Utc>>,
    },
}

impl Decision {
    /// The decision as the JSON the quote command and API answer with:
    /// `{"reward":true,"amount_hnv":"239.976","amount_base_units":"239976000000000000000","rules_version":"…","reason":"…"}`.
    pub fn quote_json(&self) -> serde_json::Value {
        serde_json::json!({
            "reward": self.reward,
            "amount_hnv": self.amount.to_string(),
            "amount_base_units": self.amount.base_units().to_string(),
            "rules_version": self.rules_version,
            "reason": self.reason,
        })
    }

    fn nothing(rules: &Rules, reason: impl Into<String>, effect: Effect) -> Decision {
        Decision {
            reward: false,
            amount: Hnv::ZERO,
            kind: None,
            business_key: None,
            rules_version: rules.version.clone(),
            reason: reason.into(),
            effect,
        }
    }

    fn reward(rules: &Rules, amount: Hnv, key: BusinessKey, reason: String) -> Decision {
        if amount.is_zero() {
            return Decision::nothing(rules, format!("{reason}: 0 HNV, no reward"), Effect::None);
        }
        Decision {
            reward: true,
            amount,
            kind: Some(key.kind),
            business_key: Some(key),
            rules_version: rules.version.clone(),
            reason,
            effect: Effect::Reward,
        }
    }
}

/// Parses `payload` as event `name` and decides it: [`parse_event`] then [`try_decide`].
///
/// ```
/// use haven_rewards::{EventName, Rules, quote};
///
/// let decision = quote(
///     &Rules::shipped(),
///     EventName::BookingCreated,
///     br#"{"booking_id":"b-1","guest_id":"g-1","total_price":99.99,"nights":3}"#,
/// )?;
/// assert_eq!(decision.amount.to_string(), "239.976");
/// # Ok::<(), haven_rewards::PayloadError>(())
/// ```
pub fn quote(rules: &Rules, name: EventName, payload: &[u8]) -> Result<Decision, PayloadError> {
    try_decide(rules, &parse_event(name, payload)?)
}

/// Decides `event` under `rules`; an event the rules refuse (an unknown event type, tier
/// or milestone, a currency they do not price, a reward too large to represent) gets no
/// reward, and the refusal as its reason. Use [`try_decide`] to tell refusals apart.
pub fn decide(rules: &Rules, event: &PartnerEvent) -> Decision {
    try_decide(rules, event).unwrap_or_else(|refusal| {
        Decision::nothing(rules, format!("refused: {refusal}"), Effect::None)
    })
}

/// Decides `event` under `rules`, or says which field the rules refuse.
pub fn try_decide(rules: &Rules, event: &PartnerEvent) -> Result<Decision, PayloadError> {
    if event.subject.event_name() != event.name {
        return Err(PayloadError::new(
            "event",
            format!("the subject is not a {} event", event.name.path()),
        ));
    }
    let source = event.name.source().as_str();
    let member = event.member.external_id.as_str();
    let key = |kind, id: &str, member: Option<&str>| BusinessKey::new(source, kind, id, member);
    Ok(match &event.subject {
        EventSubject::BookingCreated {
            booking_id,
            total_price,
            currency,
            nights,
        } => booking_reward(rules, source, booking_id, *total_price, currency, *nights)?,
        EventSubject::BookingCompleted { .. } => {
            Decision::nothing(rules, "booking completed: no reward", Effect::None)
        }
        EventSubject::BookingCancelled { booking_id } => Decision::nothing(
            rules,
            format!("booking cancelled: the rewards of booking {booking_id} are reversed"),
            Effect::ReverseBooking {
                booking_id: booking_id.clone(),
            },
        ),
        EventSubject::ReviewSubmitted { booking_id, rating } => {
            review_reward(rules, source, booking_id, *rating)
        }
        EventSubject::EventAttendance {
            event_id,
            event_type,
            attended,
        } => {
            let amount = *rules.attendance.get(event_type).ok_or_else(|| {
                PayloadError::new(
                    "type",
                    format!(
                        "unknown event type `{event_type}` (known: {})",
                        known(rules.attendance.keys())
                    ),
                )
            })?;
            if *attended {
                Decision::reward(
                    rules,
                    amount,
                    key(RewardKind::Attendance, event_id, Some(member)),
                    format!("{amount} HNV for attending a {event_type} event"),
                )
            } else {
                Decision::nothing(rules, "not attended: no reward", Effect::None)
            }
        }
        EventSubject::Contribution {
            contribution_id,
            quality,
        } => contribution_reward(rules, source, contribution_id, *quality)?,
        EventSubject::StakingStarted {
            stake_id,
            amount,
            ends_at,
        } => {
            let staking = rules.staking();
            Decision::nothing(
                rules,
                format!(
                    "stake of {amount} HNV recorded: it accrues {} a year, paid every {} days",
                    staking.apy(),
                    staking.accrual_period_days()
                ),
                Effect::RecordStake {
                    stake_id: stake_id.clone(),
                    amount: *amount,
                    ends_at: *ends_at,
                },
            )
        }
        EventSubject::CoachingMilestone { milestone } => {
            let (name, amount) = coaching_milestone(rules, milestone)?;
            Decision::reward(
                rules,
                amount,
                key(RewardKind::Coaching, name, Some(member)),
                format!("{amount} HNV for the coaching milestone {name}"),
            )
        }
        EventSubject::ReferralSuccess { referral_id, tier } => {
            let amount = *rules.referral.get(tier).ok_or_else(|| {
                PayloadError::new(
                    "tier",
                    format!(
                        "unknown referral tier `{tier}` (known: {})",
                        known(rules.referral.keys())
                    ),
                )
            })?;
            Decision::reward(
                rules,
                amount,
                key(RewardKind::Referral, referral_id, None),
                format!("{amount} HNV to the referrer for a {tier} referral"),
            )
        }
    })
}

/// A new booking: the price in the rules' currency times the HNV per unit, with the
/// multi-night bonus from the rules' number of nights.
fn booking_reward(
    rules: &Rules,
    source: &str,
    booking_id: &str,
    total_price: Decimal,
    currency: &str,
    nights: u32,
) -> Result<Decision, PayloadError> {
    let booking = &rules.booking;
    if *currency != booking.currency {
        return Err(PayloadError::new(
            "currency",
            format!(
                "bookings are priced in {}, not {currency}",
                booking.currency
            ),
        ));
    }
    let bonus = nights >= booking.multi_night_min_nights;
    let multiplier = if bonus {
        Decimal::ONE.checked_add(booking.multi_night_bonus)
    } else {
        Some(Decimal::ONE)
    };
    let amount = multiplier
        .and_then(|m| product_hnv(&[total_price, booking.hnv_per_unit, m]))
        .ok_or_else(|| too_large("total_price"))?;
    let mut reason = format!(
        "{amount} HNV: {} HNV per {currency} on {total_price} {currency}",
        booking.hnv_per_unit
    );
    if let (true, Some(m)) = (bonus, multiplier) {
        reason.push_str(&format!(", ×{m} for a stay of {nights} nights"));
    }
    Ok(Decision::reward(
        rules,
        amount,
        BusinessKey::new(source, RewardKind::Booking, booking_id, None::<&str>),
        reason,
    ))
}

/// A review: the rules' fixed amount from the minimum rating on, nothing below it.
fn review_reward(rules: &Rules, source: &str, booking_id: &str, rating: u8) -> Decision {
    let review = &rules.review;
    if rating < review.min_rating {
        Decision::nothing(
            rules,
            format!(
                "a {rating}-star review earns nothing (from {} stars: {} HNV)",
                review.min_rating, review.hnv
            ),
            Effect::None,
        )
    } else {
        Decision::reward(
            rules,
            review.hnv,
            BusinessKey::new(source, RewardKind::Review, booking_id, None::<&str>),
            format!(
                "{} HNV for a {rating}-star review of booking {booking_id}",
                review.hnv
            ),
        )
    }
}

/// A contribution: the base amount times its quality, clamped to the rules' bounds.
fn contribution_reward(
    rules: &Rules,
    source: &str,
    contribution_id: &str,
    quality: Decimal,
) -> Result<Decision, PayloadError> {
    let contribution = &rules.contribution;
    let applied = (quality).clamp(contribution.min_quality, contribution.max_quality);
    let amount =
        product_hnv(&[contribution.base_hnv, applied]).ok_or_else(|| too_large("quality"))?;
    let mut reason = format!(
        "{amount} HNV: {} HNV × quality {applied}",
        contribution.base_hnv
    );
    if applied != quality {
        reason.push_str(&format!(" ({quality} clamped)"));
    }
    Ok(Decision::reward(
        rules,
        amount,
        BusinessKey::new(
            source,
            RewardKind::Contribution,
            contribution_id,
            None::<&str>,
        ),
        reason,
    ))
}

/// The milestone named, or the `level`-th one when `milestone` is a level's digits (rules
/// names never are).
fn coaching_milestone<'r>(
    rules: &'r Rules,
    milestone: &str,
) -> Result<(&'r str, Hnv), PayloadError> {
    let found = if milestone.bytes().all(|b| b.is_ascii_digit()) {
        let level = milestone.parse::<usize>().ok().filter(|l| *l >= 1);
        level
            .and_then(|l| rules.coaching.get(l - 1))
            .ok_or_else(|| {
                PayloadError::new(
                    "level",
                    format!("must be from 1 to {}", rules.coaching.len()),
                )
            })?
    } else {
        rules
            .coaching
            .iter()
            .find(|(name, _)| name == milestone)
            .ok_or_else(|| {
                PayloadError::new(
                    "milestone",
                    format!(
                        "unknown milestone `{milestone}` (known: {})",
                        known(rules.coaching.iter().map(|(name, _)| name))
                    ),
                )
            })?
    };
    Ok((found.0.as_str(), found.1))
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

fn too_large(field: &str) -> PayloadError {
    PayloadError::new(field, "the reward would exceed the largest HNV amount")
}
