//! Redis pub/sub between api replicas: one `PUBLISH`, and the subscriber loop that keeps a
//! channel subscribed (reconnecting with a back-off of up to 5 s) for as long as its owner
//! lives. Used by the guardian event bridge and the access-token revocation feed.

use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt as _;

/// `PUBLISH channel payload` on a pooled connection.
pub(crate) async fn publish(
    redis: &deadpool_redis::Pool,
    channel: &str,
    payload: String,
) -> Result<(), String> {
    let mut conn = redis.get().await.map_err(|e| e.to_string())?;
    deadpool_redis::redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query_async::<i64>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Keeps `channel` subscribed while `owner` lives: `subscribed` runs after each
/// (re)subscription (what was published meanwhile was missed), `message` for each payload.
/// `what` names the channel in the logs.
pub(crate) async fn subscribe<T: Send + Sync + 'static>(
    client: deadpool_redis::redis::Client,
    channel: String,
    what: &'static str,
    owner: Weak<T>,
    subscribed: impl Fn(&T) + Send,
    message: impl Fn(&T, &[u8]) + Send,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        if owner.strong_count() == 0 {
            return;
        }
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    match owner.upgrade() {
                        Some(owner) => subscribed(&owner),
                        None => return,
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(received) = messages.next().await {
                        let Some(owner) = owner.upgrade() else {
                            return;
                        };
                        message(&owner, received.get_payload_bytes());
                    }
                    tracing::warn!(channel = what, "the channel closed; subscribing again");
                }
                Err(error) => tracing::warn!(%error, channel = what, "cannot subscribe"),
            },
            Err(error) => tracing::warn!(%error, channel = what, "cannot reach Redis"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
