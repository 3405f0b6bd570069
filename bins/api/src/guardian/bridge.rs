//! Carries the hub's events between api replicas over Redis pub/sub, so a guardian connected
//! to any replica gets the pushes of its vault, and a revoked session or a removed guardian
//! closes sockets on every replica at once (not at their next heartbeat).
//!
//! Each replica publishes what its hub sends (`PUBLISH <prefix>guardian:events`) and
//! forwards what the others published to its own sockets. Pub/sub delivers at most once and
//! only to those listening: a replica that is disconnected from Redis misses pushes (a
//! guardian's `list_requests` catches up) and still closes revoked sockets at the next
//! heartbeat. The subscriber reconnects with a back-off of up to 5 s.

use std::sync::Arc;

use haven_vault::VaultId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::hub::{Event, Hub};

/// What travels on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    origin: Uuid,
    vault: VaultId,
    event: WireEvent,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireEvent {
    Frame { text: String },
    FrameFor { guardian: Uuid, text: String },
    SessionRevoked { session: Uuid },
    GuardianRemoved { guardian: Uuid },
}

impl WireEvent {
    fn of(event: &Event) -> Self {
        match event {
            Event::Frame(text) => WireEvent::Frame {
                text: text.as_str().to_owned(),
            },
            Event::FrameFor(guardian, text) => WireEvent::FrameFor {
                guardian: *guardian,
                text: text.as_str().to_owned(),
            },
            Event::SessionRevoked(session) => WireEvent::SessionRevoked { session: *session },
            Event::GuardianRemoved(guardian) => WireEvent::GuardianRemoved {
                guardian: *guardian,
            },
        }
    }

    fn into_event(self) -> Event {
        match self {
            WireEvent::Frame { text } => Event::Frame(Arc::new(text)),
            WireEvent::FrameFor { guardian, text } => Event::FrameFor(guardian, Arc::new(text)),
            WireEvent::SessionRevoked { session } => Event::SessionRevoked(session),
            WireEvent::GuardianRemoved { guardian } => Event::GuardianRemoved(guardian),
        }
    }
}

/// This replica's side of the channel.
pub struct Bridge {
    redis: deadpool_redis::Pool,
    channel: String,
    origin: Uuid,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("channel", &self.channel)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Publishes through `redis` on `channel`, and spawns the subscriber that forwards the
    /// other replicas' events to `hub` (it ends when the hub is dropped).
    pub fn start(
        redis: deadpool_redis::Pool,
        redis_url: &str,
        channel: String,
        hub: &Arc<Hub>,
    ) -> anyhow::Result<Self> {
        let client = deadpool_redis::redis::Client::open(redis_url)?;
        let origin = Uuid::new_v4();
        tokio::spawn(crate::pubsub::subscribe(
            client,
            channel.clone(),
            "guardian events",
            Arc::downgrade(hub),
            |_| {},
            move |hub, payload| forward(hub, origin, payload),
        ));
        Ok(Self {
            redis,
            channel,
            origin,
        })
    }

    /// Publishes `event` of `vault` for the other replicas (in the background; a failure is
    /// logged: the other replicas then rely on their heartbeats and refetches).
    pub fn publish(&self, vault: VaultId, event: &Event) {
        let wire = Wire {
            origin: self.origin,
            vault,
            event: WireEvent::of(event),
        };
        let Ok(payload) = serde_json::to_string(&wire) else {
            return;
        };
        let (redis, channel) = (self.redis.clone(), self.channel.clone());
        tokio::spawn(async move {
            if let Err(error) = crate::pubsub::publish(&redis, &channel, payload).await {
                tracing::warn!(%error, "a guardian event was not published to the other replicas");
            }
        });
    }
}

fn forward(hub: &Hub, origin: Uuid, payload: &[u8]) {
    match serde_json::from_slice::<Wire>(payload) {
        Ok(wire) if wire.origin == origin => {}
        Ok(wire) => hub.deliver(wire.vault, wire.event.into_event()),
        Err(error) => tracing::warn!(%error, "an unreadable guardian event was ignored"),
    }
}
