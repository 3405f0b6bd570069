//! Partner records as the events they stand for.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Error;

/// One partner event found by a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncItem {
    /// `aurora` or `tribe`.
    pub source: &'static str,
    /// The event name, as the webhook endpoints name it (`booking-created`, …).
    pub event: &'static str,
    /// Identifies the record within the partner (`b-1`, `ev-1:m-1`).
    pub record: String,
    /// The event's payload: the partner's JSON of the record (byte for byte when the
    /// record itself is the payload).
    pub payload: Vec<u8>,
}

impl SyncItem {
    /// A stable id of this event of this record, unique within the source: a sync that
    /// finds it again is recognised as the same item.
    pub fn origin(&self) -> String {
        format!("sync:{}:{}", self.event, self.record)
    }
}

/// The fields of a record the sync itself needs (the rest is for the rewards parser).
#[derive(Deserialize)]
struct BookingHead {
    #[serde(alias = "id", alias = "bookingId")]
    booking_id: Option<serde_json::Value>,
    #[serde(alias = "guestId")]
    guest_id: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    review: Option<Review>,
}

#[derive(Deserialize)]
struct Review {
    rating: serde_json::Value,
}

#[derive(Deserialize)]
struct AttendanceHead {
    #[serde(alias = "id", alias = "eventId")]
    event_id: Option<serde_json::Value>,
    #[serde(alias = "attendeeId", alias = "member_id", alias = "memberId")]
    attendee_id: Option<serde_json::Value>,
}

fn id_text(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn decode(partner: &'static str, reason: impl Into<String>) -> Error {
    Error::Decode {
        partner,
        reason: reason.into(),
    }
}

/// The events of Aurora booking records: `booking-created` for each, then
/// `booking-completed` / `booking-cancelled` after `status`, and `review-submitted` when a
/// review is attached. A record without a booking id is an error (it cannot be deduplicated).
pub fn aurora_items(records: &[Box<RawValue>]) -> Result<Vec<SyncItem>, Error> {
    let mut items = Vec::new();
    for record in records {
        let head: BookingHead = serde_json::from_str(record.get())
            .map_err(|e| decode("aurora", format!("a booking is not an object: {e}")))?;
        let booking = id_text(&head.booking_id)
            .ok_or_else(|| decode("aurora", "a booking has no booking_id"))?;
        let item = |event: &'static str, payload: Vec<u8>| SyncItem {
            source: "aurora",
            event,
            record: booking.clone(),
            payload,
        };
        items.push(item("booking-created", record.get().as_bytes().to_vec()));
        match head.status.as_deref() {
            Some("completed") => {
                items.push(item("booking-completed", record.get().as_bytes().to_vec()))
            }
            Some("cancelled" | "canceled") => {
                items.push(item("booking-cancelled", record.get().as_bytes().to_vec()))
            }
            _ => {}
        }
        if let Some(review) = head.review {
            let payload = serde_json::json!({
                "booking_id": booking,
                "guest_id": head.guest_id,
                "rating": review.rating,
            });
            items.push(item("review-submitted", payload.to_string().into_bytes()));
        }
    }
    Ok(items)
}

/// The `event-attendance` events of Tribe attendance records.
pub fn tribe_items(records: &[Box<RawValue>]) -> Result<Vec<SyncItem>, Error> {
    records
        .iter()
        .map(|record| {
            let head: AttendanceHead = serde_json::from_str(record.get())
                .map_err(|e| decode("tribe", format!("an attendance is not an object: {e}")))?;
            let event = id_text(&head.event_id)
                .ok_or_else(|| decode("tribe", "an attendance has no event_id"))?;
            let attendee = id_text(&head.attendee_id)
                .ok_or_else(|| decode("tribe", "an attendance has no attendee_id"))?;
            Ok(SyncItem {
                source: "tribe",
                event: "event-attendance",
                record: format!("{event}:{attendee}"),
                payload: record.get().as_bytes().to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn raw(json: &str) -> Vec<Box<RawValue>> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bookings_become_their_events_with_the_partners_bytes() {
        let records = raw(
            r#"[{"booking_id":"b-1","guest_id":"g-1","total_price":99.99,"nights":3,"status":"confirmed"},
                {"id":"b-2","guestId":"g-2","totalPrice":150,"nights":1,"status":"cancelled","review":{"rating":5}}]"#,
        );
        let items = aurora_items(&records).unwrap();
        let events: Vec<(&str, &str)> =
            items.iter().map(|i| (i.event, i.record.as_str())).collect();
        assert_eq!(
            events,
            [
                ("booking-created", "b-1"),
                ("booking-created", "b-2"),
                ("booking-cancelled", "b-2"),
                ("review-submitted", "b-2"),
            ]
        );
        let payload = std::str::from_utf8(&items[0].payload).unwrap();
        assert!(
            payload.contains("99.99"),
            "numbers are the partner's own text: {payload}"
        );
        assert_eq!(items[1].origin(), "sync:booking-created:b-2");
        assert!(aurora_items(&raw(r#"[{"guest_id":"g"}]"#)).is_err());
    }

    #[test]
    fn attendances_are_keyed_by_event_and_attendee() {
        let items = tribe_items(&raw(
            r#"[{"event_id":"ev-1","attendee_id":"m-1","type":"workshop","attended":true}]"#,
        ))
        .unwrap();
        assert_eq!(items[0].origin(), "sync:event-attendance:ev-1:m-1");
        assert!(tribe_items(&raw(r#"[{"event_id":"ev-1"}]"#)).is_err());
    }
}
