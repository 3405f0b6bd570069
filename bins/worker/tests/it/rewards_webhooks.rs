//! Reward state changes reach partner apps: each change is written to the outbound webhook
//! outbox in its transaction, for the endpoints subscribed to that event type, and the
//! worker delivers it signed (Standard Webhooks) to a local receiver that verifies it.

use std::time::Duration;

use haven_db::{PgRewards, PgWebhookOutbox};
use haven_webhooks::Secret;
use haven_webhooks::receiver::{Receiver, standardwebhooks_accepts};
use serde_json::Value;

use crate::stack::Stack;
use crate::webhook_delivery::point_endpoint_at;

const SETTLE: Duration = Duration::from_secs(60);

/// The `type` and reward state of each delivery the receiver verified, in arrival order.
fn delivered(receiver: &Receiver) -> Vec<(String, String, String)> {
    receiver
        .log()
        .iter()
        .filter(|r| r.answered == Some(204))
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (
                body["type"].as_str().unwrap().to_owned(),
                body["reward"]["external_id"].as_str().unwrap().to_owned(),
                body["reward"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reward_changes_are_delivered_signed_to_subscribed_endpoints_only() {
    let mut stack = Stack::start().await;
    let outbox = PgWebhookOutbox::new(stack.pool.clone());
    let rewards = PgRewards::new(stack.pool.clone());

    // A partner app subscribed to the member-facing changes, and one subscribed only to
    // holds (none happen here: it must receive nothing).
    let app = outbox
        .create_endpoint("http://placeholder/", "app")
        .await
        .unwrap();
    let app_receiver = Receiver::start(vec![Secret::standard(&app.secret).unwrap()], vec![]).await;
    point_endpoint_at(&stack.api.db, app.endpoint.id, &app_receiver.url()).await;
    let subscribed: Vec<String> = ["reward.pending", "reward.confirmed", "reward.reversed"]
        .map(str::to_owned)
        .to_vec();
    assert!(
        rewards
            .subscribe(app.endpoint.id, &subscribed)
            .await
            .unwrap()
    );
    let holds = outbox
        .create_endpoint("http://placeholder/", "holds")
        .await
        .unwrap();
    let holds_receiver =
        Receiver::start(vec![Secret::standard(&holds.secret).unwrap()], vec![]).await;
    point_endpoint_at(&stack.api.db, holds.endpoint.id, &holds_receiver.url()).await;
    assert!(
        rewards
            .subscribe(holds.endpoint.id, &["reward.held".to_owned()])
            .await
            .unwrap()
    );
    // An endpoint with no subscription gets no reward events either.
    let silent = outbox
        .create_endpoint("http://placeholder/", "silent")
        .await
        .unwrap();
    let silent_receiver =
        Receiver::start(vec![Secret::standard(&silent.secret).unwrap()], vec![]).await;
    point_endpoint_at(&stack.api.db, silent.endpoint.id, &silent_receiver.url()).await;

    stack.kill_worker();
    stack.set_worker_env("HAVEN_WEBHOOK_ALLOW", "127.0.0.1/32");
    stack.set_worker_env("HAVEN_WEBHOOK_ALLOW_HTTP", "true");
    stack.set_worker_env("HAVEN_WEBHOOK_DELIVERY_SECS", "1");
    stack.start_worker();

    let booking_id = Stack::id("b");
    let guest = Stack::id("g");
    let body = format!(
        r#"{{"booking_id":"{booking_id}","guest_id":"{guest}","total_price":200,"nights":2}}"#
    );
    let (status, accepted) = stack.send("aurora/booking-created", &body).await;
    assert_eq!(status, 202, "{accepted}");
    stack
        .eventually("pending and confirmed are delivered", SETTLE, || async {
            delivered(&app_receiver).len() >= 2
        })
        .await;
    let cancel = format!(r#"{{"booking_id":"{booking_id}","guest_id":"{guest}"}}"#);
    let (status, cancelled) = stack.send("aurora/booking-cancelled", &cancel).await;
    assert_eq!(status, 202, "{cancelled}");
    stack
        .eventually("the reversal is delivered", SETTLE, || async {
            delivered(&app_receiver).len() >= 3
        })
        .await;
    // Let any stray delivery arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let got = delivered(&app_receiver);
    let expected: Vec<(String, String, String)> = [
        ("reward.pending", "pending"),
        ("reward.confirmed", "confirmed"),
        ("reward.reversed", "reversed"),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), booking_id.clone(), (*s).to_owned()))
    .collect();
    assert_eq!(got, expected, "each change once, in order");
    assert_eq!(app_receiver.accepted().len(), 3, "three distinct messages");
    // Signed so that the reference implementation accepts them too.
    standardwebhooks_accepts(&app_receiver.log(), &app.secret);
    assert!(holds_receiver.log().is_empty(), "not subscribed to these");
    assert!(silent_receiver.log().is_empty(), "not subscribed at all");
}
