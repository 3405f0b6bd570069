//! The HTTP partner clients against a local stub of each partner API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use haven_partners::{AuroraClient, Error, HttpAurora, HttpTribe, PartnerConfig, TribeClient};
use haven_resilience::RetryPolicy;
use haven_testkit::{StubResponse, StubServer};

fn config(url: &str) -> PartnerConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    PartnerConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(5),
        },
        timeout: Duration::from_secs(2),
        ..PartnerConfig::new(url, "partner-key".to_owned().into())
    }
}

/// Aurora pages through its bookings with a cursor; the client sends the key and the
/// window, keeps the partner's bytes and turns each booking into its events.
#[tokio::test]
async fn aurora_bookings_are_paged_and_turned_into_events() {
    let stub = StubServer::start(|req| {
        assert_eq!(req.path(), "/api/bookings");
        match req.query("cursor").as_deref() {
            None => StubResponse::json(
                r#"{"bookings":[{"booking_id":"b-1","guest_id":"g-1","total_price":99.99,"nights":3,"status":"confirmed"}],"next_cursor":"p2"}"#,
            ),
            Some("p2") => StubResponse::json(
                r#"{"bookings":[{"booking_id":"b-2","guest_id":"g-2","total_price":200,"nights":2,"status":"cancelled"}],"next_cursor":null}"#,
            ),
            Some(other) => panic!("cursor {other}"),
        }
    })
    .await;
    let aurora = HttpAurora::new(config(&format!("{}/api", stub.url()))).unwrap();
    let since = Utc.with_ymd_and_hms(2026, 12, 6, 2, 0, 0).unwrap();
    let items = aurora.recent(since).await.unwrap();
    let events: Vec<(&str, &str)> = items.iter().map(|i| (i.event, i.record.as_str())).collect();
    assert_eq!(
        events,
        [
            ("booking-created", "b-1"),
            ("booking-created", "b-2"),
            ("booking-cancelled", "b-2")
        ]
    );
    assert!(
        std::str::from_utf8(&items[0].payload)
            .unwrap()
            .contains("99.99")
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer partner-key")
    );
    assert_eq!(
        requests[0].query("updated_since").as_deref(),
        Some("2026-12-06T02:00:00Z")
    );
}

/// Tribe's attendances; a 503 is retried, a 401 is not.
#[tokio::test]
async fn tribe_attendances_are_retried_on_503_only() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let stub = StubServer::start(move |req| {
        assert_eq!(req.path(), "/attendances");
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            return StubResponse::status(503);
        }
        StubResponse::json(
            r#"{"attendances":[{"event_id":"ev-1","attendee_id":"m-1","type":"workshop","attended":true}]}"#,
        )
    })
    .await;
    let tribe = HttpTribe::new(config(stub.url())).unwrap();
    let items = tribe.recent(Utc::now()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one retry");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].origin(), "sync:event-attendance:ev-1:m-1");

    let denied = StubServer::start(|_| StubResponse::status(401)).await;
    let err = HttpTribe::new(config(denied.url()))
        .unwrap()
        .recent(Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Upstream {
                partner: "tribe",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(denied.count(), 1, "a 401 is not retried");
}

/// A partner that redirects, pages forever or answers junk is an error, never followed.
#[tokio::test]
async fn redirects_endless_paging_and_junk_are_errors() {
    let elsewhere = StubServer::start(|_| StubResponse::json(r#"{"bookings":[]}"#)).await;
    let target = format!("{}/bookings", elsewhere.url());
    let redirecting =
        StubServer::start(move |_| StubResponse::status(302).with_header("location", &target))
            .await;
    let err = HttpAurora::new(config(redirecting.url()))
        .unwrap()
        .recent(Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Upstream { .. }), "{err:?}");
    assert_eq!(elsewhere.count(), 0);

    let endless =
        StubServer::start(|_| StubResponse::json(r#"{"bookings":[],"next_cursor":"again"}"#)).await;
    let mut cfg = config(endless.url());
    cfg.max_pages = 3;
    let err = HttpAurora::new(cfg)
        .unwrap()
        .recent(Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyPages { max_pages: 3, .. }),
        "{err:?}"
    );

    let junk = StubServer::start(|_| StubResponse::json("[1,2,3]")).await;
    let err = HttpAurora::new(config(junk.url()))
        .unwrap()
        .recent(Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(HttpAurora::new(config("ftp://x")).is_err());
}
