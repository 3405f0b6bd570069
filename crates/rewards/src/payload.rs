//! Raw partner payloads to [`PartnerEvent`]s: field-name variants, exact numbers read from
//! the request text, validation that names the field.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use haven_core::ErrorCode;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::amount::{AmountError, Decimal};
use crate::event::{EventName, EventSubject, MemberRef, PartnerEvent, Source};

/// Longest id, in characters, of a booking, event, member or anything else a partner names.
pub const MAX_ID_CHARS: usize = 128;

/// The currency of a booking whose payload names none (Aurora's).
const DEFAULT_CURRENCY: &str = "CAD";
/// The type of an attended event whose payload names none.
const DEFAULT_EVENT_TYPE: &str = "general";
/// The tier of a referral whose payload names none.
const DEFAULT_REFERRAL_TIER: &str = "basic";

/// Why a payload was refused: the field at fault (its snake_case name) and what is wrong.
///
/// Displays as ``field `total_price`: must be positive``; its wire code is
/// [`ErrorCode::InvalidPayload`] (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct PayloadError {
    /// The field, by its snake_case name (`total_price` even when the payload said
    /// `totalPrice`); `payload` for the body as a whole.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PayloadError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The wire code: always [`ErrorCode::InvalidPayload`].
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::InvalidPayload
    }
}

/// Parses and validates the payload of event `name` into a [`PartnerEvent`].
///
/// The payload is a JSON object, or one wrapped as `{"data": {…}}`. Every field is accepted
/// in snake_case and camelCase, under the aliases listed in `docs/REWARDS.md` (the event's
/// own id also as `id`); two aliases of one field with different values are refused, and
/// unknown fields are ignored. Numbers are read from the request text (or from strings
/// such as `"99.99"`), never through a float.
///
/// Missing optional fields take the partner protocols' defaults: currency `CAD`, event
/// type `general`, referral tier `basic`, contribution quality `1`. What the rules decide
/// (a known event type, tier or milestone, the booking currency) is checked by
/// [`try_decide`](crate::try_decide).
pub fn parse_event(name: EventName, payload: &[u8]) -> Result<PartnerEvent, PayloadError> {
    let fields = Fields::parse(payload)?;
    let occurred_at = fields.get(&OCCURRED_AT, read_time)?;
    let (role, subject) = match name {
        EventName::BookingCreated => (
            &GUEST,
            EventSubject::BookingCreated {
                booking_id: fields.require(&BOOKING_ID, read_id)?,
                total_price: fields.require(&TOTAL_PRICE, read_positive)?,
                currency: fields
                    .get(&CURRENCY, read_currency)?
                    .unwrap_or_else(|| DEFAULT_CURRENCY.to_owned()),
                nights: fields.require(&NIGHTS, read_nights)?,
            },
        ),
        EventName::BookingCompleted => (
            &GUEST,
            EventSubject::BookingCompleted {
                booking_id: fields.require(&BOOKING_ID, read_id)?,
            },
        ),
        EventName::BookingCancelled => (
            &GUEST,
            EventSubject::BookingCancelled {
                booking_id: fields.require(&BOOKING_ID, read_id)?,
            },
        ),
        EventName::ReviewSubmitted => (
            &GUEST,
            EventSubject::ReviewSubmitted {
                booking_id: fields.require(&REVIEWED_BOOKING_ID, read_id)?,
                rating: fields.require(&RATING, read_rating)?,
            },
        ),
        EventName::EventAttendance => (
            &ATTENDEE,
            EventSubject::EventAttendance {
                event_id: fields.require(&EVENT_ID, read_id)?,
                event_type: fields
                    .get(&EVENT_TYPE, read_name)?
                    .unwrap_or_else(|| DEFAULT_EVENT_TYPE.to_owned()),
                attended: fields.require(&ATTENDED, read_bool)?,
            },
        ),
        EventName::Contribution => (
            &CONTRIBUTOR,
            EventSubject::Contribution {
                contribution_id: fields.require(&CONTRIBUTION_ID, read_id)?,
                quality: fields
                    .get(&QUALITY, read_not_negative)?
                    .unwrap_or(Decimal::ONE),
            },
        ),
        EventName::StakingStarted => (
            &STAKER,
            EventSubject::StakingStarted {
                stake_id: fields.require(&STAKE_ID, read_id)?,
                amount: fields.require(&STAKE_AMOUNT, |raw| {
                    read_positive(raw)?
                        .to_hnv()
                        .ok_or_else(|| "must be positive".to_owned())
                })?,
                ends_at: fields.get(&ENDS_AT, read_time)?,
            },
        ),
        EventName::CoachingMilestone => {
            let named = fields.get(&MILESTONE, read_milestone)?;
            let level = fields.get(&LEVEL, |raw| read_level(raw).map(|l| l.to_string()))?;
            let milestone = match (named, level) {
                (Some(named), Some(level)) if named != level => {
                    return Err(PayloadError::new(
                        LEVEL.name,
                        "give either `milestone` or `level`, not both",
                    ));
                }
                (Some(milestone), _) | (None, Some(milestone)) => milestone,
                (None, None) => return Err(PayloadError::new(MILESTONE.name, "is required")),
            };
            (&COACHEE, EventSubject::CoachingMilestone { milestone })
        }
        EventName::ReferralSuccess => (
            &REFERRER,
            EventSubject::ReferralSuccess {
                referral_id: fields.require(&REFERRAL_ID, read_id)?,
                tier: fields
                    .get(&TIER, read_name)?
                    .unwrap_or_else(|| DEFAULT_REFERRAL_TIER.to_owned()),
            },
        ),
    };
    let member = fields.member(name.source(), role)?;
    Ok(PartnerEvent {
        name,
        member,
        subject,
        occurred_at,
    })
}

/// A field: its snake_case name (the one errors use) and further snake_case aliases. Each
/// name is also accepted in camelCase.
struct Field {
    name: &'static str,
    aliases: &'static [&'static str],
}

const fn field(name: &'static str, aliases: &'static [&'static str]) -> Field {
    Field { name, aliases }
}

const BOOKING_ID: Field = field("booking_id", &["id"]);
const REVIEWED_BOOKING_ID: Field = field("booking_id", &[]);
const TOTAL_PRICE: Field = field("total_price", &["total_amount", "total"]);
const CURRENCY: Field = field("currency", &["currency_code"]);
const NIGHTS: Field = field("nights", &["num_nights", "number_of_nights", "night_count"]);
const RATING: Field = field("rating", &["stars"]);
const EVENT_ID: Field = field("event_id", &["id"]);
const EVENT_TYPE: Field = field("type", &["event_type"]);
const ATTENDED: Field = field("attended", &[]);
const CONTRIBUTION_ID: Field = field("contribution_id", &["id"]);
const QUALITY: Field = field(
    "quality",
    &["quality_score", "quality_multiplier", "multiplier"],
);
const STAKE_ID: Field = field("stake_id", &["staking_id", "id"]);
const STAKE_AMOUNT: Field = field("amount", &["stake_amount", "staked_amount"]);
const ENDS_AT: Field = field("ends_at", &["end_date", "unlock_at", "lock_until"]);
const MILESTONE: Field = field("milestone", &["milestone_name", "milestone_id"]);
const LEVEL: Field = field("level", &["milestone_level", "tier_level"]);
const REFERRAL_ID: Field = field("referral_id", &["id"]);
const TIER: Field = field("tier", &["referral_tier"]);
const OCCURRED_AT: Field = field("occurred_at", &["timestamp", "event_time"]);

/// Who an event is about, and where the payload names them.
struct Role {
    id: Field,
    email: Field,
    email_verified: Field,
}

const GUEST: Role = Role {
    id: field("guest_id", &["member_id", "user_id"]),
    email: field("email", &["guest_email"]),
    email_verified: field("email_verified", &["guest_email_verified"]),
};
const ATTENDEE: Role = Role {
    id: field("attendee_id", &["member_id", "user_id"]),
    email: field("email", &["attendee_email"]),
    email_verified: field("email_verified", &["attendee_email_verified"]),
};
const CONTRIBUTOR: Role = Role {
    id: field("contributor_id", &["member_id", "user_id"]),
    email: field("email", &["contributor_email"]),
    email_verified: field("email_verified", &["contributor_email_verified"]),
};
const STAKER: Role = Role {
    id: field("member_id", &["staker_id", "user_id"]),
    email: field("email", &["member_email"]),
    email_verified: field("email_verified", &["member_email_verified"]),
};
const COACHEE: Role = Role {
    id: field("member_id", &["coachee_id", "user_id"]),
    email: field("email", &["member_email"]),
    email_verified: field("email_verified", &["member_email_verified"]),
};
/// The referrer only: a referral's `member_id` or `email` may well be the new member's.
const REFERRER: Role = Role {
    id: field("referrer_id", &[]),
    email: field("referrer_email", &[]),
    email_verified: field("referrer_email_verified", &[]),
};

/// `booking_id` → `bookingId`.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The payload's fields, each with its raw JSON text.
struct Fields(BTreeMap<String, Box<RawValue>>);

impl Fields {
    fn parse(payload: &[u8]) -> Result<Fields, PayloadError> {
        let top = Fields::object(payload, "payload")?;
        match top.0.get("data") {
            Some(inner) if inner.get().starts_with('{') => {
                Fields::object(inner.get().as_bytes(), "data")
            }
            _ => Ok(top),
        }
    }

    fn object(bytes: &[u8], what: &str) -> Result<Fields, PayloadError> {
        let pairs = serde_json::from_slice::<Pairs>(bytes).map_err(|e| {
            let reason = match e.classify() {
                serde_json::error::Category::Data => "must be a JSON object".to_owned(),
                _ => format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            };
            PayloadError::new(what, reason)
        })?;
        let mut map = BTreeMap::new();
        for (key, value) in pairs.0 {
            if map.contains_key(&key) {
                return Err(PayloadError::new(key, "appears more than once"));
            }
            map.insert(key, value);
        }
        Ok(Fields(map))
    }

    /// The field's value under each name present (null counts as absent), parsed with
    /// `read`; the value, once all agree.
    fn get<T: PartialEq>(
        &self,
        field: &Field,
        read: impl Fn(&RawValue) -> Result<T, String>,
    ) -> Result<Option<T>, PayloadError> {
        let mut found: Option<(String, T)> = None;
        for snake in std::iter::once(&field.name).chain(field.aliases) {
            let camel = camel_case(snake);
            let spellings = [Some(snake.to_string()), (camel != *snake).then_some(camel)];
            for key in spellings.into_iter().flatten() {
                let Some(raw) = self.0.get(&key) else {
                    continue;
                };
                if raw.get() == "null" {
                    continue;
                }
                let value = read(raw).map_err(|reason| PayloadError::new(field.name, reason))?;
                match &found {
                    Some((first, earlier)) if *earlier != value => {
                        return Err(PayloadError::new(
                            field.name,
                            format!("`{first}` and `{key}` disagree"),
                        ));
                    }
                    Some(_) => {}
                    None => found = Some((key, value)),
                }
            }
        }
        Ok(found.map(|(_, value)| value))
    }

    fn require<T: PartialEq>(
        &self,
        field: &Field,
        read: impl Fn(&RawValue) -> Result<T, String>,
    ) -> Result<T, PayloadError> {
        self.get(field, read)?
            .ok_or_else(|| PayloadError::new(field.name, "is required"))
    }

    fn member(&self, source: Source, role: &Role) -> Result<MemberRef, PayloadError> {
        let external_id = self.require(&role.id, read_id)?;
        let verified = self.get(&role.email_verified, read_bool)?.unwrap_or(false);
        let email = if verified {
            self.get(&role.email, read_email)?
        } else {
            None
        };
        Ok(MemberRef {
            source,
            external_id,
            email,
        })
    }
}

/// A JSON object's entries in order, duplicates kept (so they can be refused).
struct Pairs(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    pairs.push(entry);
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(PairsVisitor)
    }
}

/// What a raw JSON value is, by its first byte (serde_json has already checked it).
enum Raw<'a> {
    String(String),
    Number(&'a str),
    Other(&'static str),
}

fn classify(raw: &RawValue) -> Result<Raw<'_>, String> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') => Raw::String(
            serde_json::from_str(text).map_err(|_| "is not a valid JSON string".to_owned())?,
        ),
        Some(b'-' | b'0'..=b'9') => Raw::Number(text),
        Some(b't' | b'f') => Raw::Other("a boolean"),
        Some(b'{') => Raw::Other("an object"),
        Some(b'[') => Raw::Other("an array"),
        _ => Raw::Other("not a value"),
    })
}

fn read_string(raw: &RawValue) -> Result<String, String> {
    match classify(raw)? {
        Raw::String(s) => Ok(s),
        Raw::Number(_) => Err("must be a string, not a number".to_owned()),
        Raw::Other(kind) => Err(format!("must be a string, not {kind}")),
    }
}

/// An id: a string of 1 to 128 printable characters without surrounding whitespace, or a
/// whole number (taken as its digits).
fn read_id(raw: &RawValue) -> Result<String, String> {
    let text = match classify(raw)? {
        Raw::String(s) => s,
        Raw::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.to_owned(),
        Raw::Number(_) => return Err("must be a string or a whole number".to_owned()),
        Raw::Other(kind) => return Err(format!("must be a string or a whole number, not {kind}")),
    };
    let count = text.chars().count();
    if count == 0 || count > MAX_ID_CHARS {
        return Err(format!("must be 1 to {MAX_ID_CHARS} characters"));
    }
    if text.chars().any(is_unprintable) {
        return Err("must hold printable characters only".to_owned());
    }
    if text.trim() != text {
        return Err("must not start or end with whitespace".to_owned());
    }
    Ok(text)
}

/// Control characters and the invisible formatting ones (zero-width, bidirectional
/// overrides, soft hyphen, byte-order mark), which would let two ids look alike.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn read_decimal(raw: &RawValue) -> Result<Decimal, String> {
    let parsed = match classify(raw)? {
        Raw::String(s) => Decimal::parse(&s),
        Raw::Number(n) => Decimal::parse(n),
        Raw::Other(kind) => return Err(format!("must be a number, not {kind}")),
    };
    parsed.map_err(|e| match e {
        AmountError::Overflow | AmountError::TooLong => "is too large".to_owned(),
        AmountError::TooManyDecimals { .. } => format!("{e}"),
        _ => "must be an exact decimal number".to_owned(),
    })
}

fn read_positive(raw: &RawValue) -> Result<Decimal, String> {
    let value = read_decimal(raw)?;
    if !value.is_positive() {
        return Err("must be positive".to_owned());
    }
    Ok(value)
}

fn read_not_negative(raw: &RawValue) -> Result<Decimal, String> {
    let value = read_decimal(raw)?;
    if value.is_negative() {
        return Err("must not be negative".to_owned());
    }
    Ok(value)
}

/// A whole number in `min..=max`.
fn read_whole(raw: &RawValue, min: u32, max: u32) -> Result<u32, String> {
    let out_of_range = || {
        if max == u32::MAX {
            format!("must be a whole number of at least {min}")
        } else {
            format!("must be a whole number from {min} to {max}")
        }
    };
    let value = read_decimal(raw).map_err(|_| out_of_range())?;
    if !value.is_integer() {
        return Err(out_of_range());
    }
    u32::try_from(value.trunc_int())
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(out_of_range)
}

fn read_nights(raw: &RawValue) -> Result<u32, String> {
    read_whole(raw, 1, u32::MAX)
}

fn read_rating(raw: &RawValue) -> Result<u8, String> {
    read_whole(raw, 1, 5).map(|r| r as u8)
}

fn read_level(raw: &RawValue) -> Result<u32, String> {
    read_whole(raw, 1, u32::MAX)
}

fn read_bool(raw: &RawValue) -> Result<bool, String> {
    match raw.get() {
        "true" | "\"true\"" => Ok(true),
        "false" | "\"false\"" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

/// A name of the rules' vocabulary (event type, tier, milestone): lower-cased, `-` and
/// spaces read as `_`.
fn read_name(raw: &RawValue) -> Result<String, String> {
    let text = read_string(raw)?;
    let name: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err("must be a name of 1 to 64 letters, digits and `_`".to_owned());
    }
    Ok(name)
}

/// A milestone name, or a number (then the level's digits).
fn read_milestone(raw: &RawValue) -> Result<String, String> {
    match classify(raw)? {
        Raw::Number(_) => read_level(raw).map(|l| l.to_string()),
        _ => read_name(raw),
    }
}

fn read_currency(raw: &RawValue) -> Result<String, String> {
    let text = read_string(raw)?;
    if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("must be a three-letter ISO 4217 code".to_owned());
    }
    Ok(text.to_ascii_uppercase())
}

fn read_email(raw: &RawValue) -> Result<String, String> {
    let email = read_string(raw)?.to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    } && email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || is_unprintable(c));
    if !valid {
        return Err("is not an e-mail address".to_owned());
    }
    Ok(email)
}

/// RFC 3339 text, or whole Unix seconds.
fn read_time(raw: &RawValue) -> Result<DateTime<Utc>, String> {
    match classify(raw)? {
        Raw::String(s) => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| "must be an RFC 3339 time such as 2026-12-07T10:00:00Z".to_owned()),
        Raw::Number(n) => n
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| "must be whole Unix seconds or an RFC 3339 time".to_owned()),
        Raw::Other(kind) => Err(format!("must be a time, not {kind}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_of_snake_names() {
        assert_eq!(camel_case("booking_id"), "bookingId");
        assert_eq!(camel_case("guest_email_verified"), "guestEmailVerified");
        assert_eq!(camel_case("id"), "id");
    }

    #[test]
    fn ids_refuse_invisible_and_padded_text() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(read_id(&raw(r#""b-1""#)).unwrap(), "b-1");
        assert_eq!(read_id(&raw("1234")).unwrap(), "1234");
        assert!(read_id(&raw("12.5")).is_err());
        assert!(read_id(&raw(r#""b\u200b-1""#)).is_err());
        assert!(read_id(&raw(r#"" b-1""#)).is_err());
        assert!(read_id(&raw(r#""""#)).is_err());
        assert!(read_id(&raw(&format!("\"{}\"", "x".repeat(129)))).is_err());
        assert!(read_id(&raw(&format!("\"{}\"", "é".repeat(128)))).is_ok());
    }
}
