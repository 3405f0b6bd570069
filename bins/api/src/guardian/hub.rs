//! The connected guardian sockets of this process, by vault: what is pushed to a vault
//! reaches each of its sockets here, and, through the [`Bridge`] when one is attached, the
//! sockets of the other replicas. A socket that falls behind by more than
//! [`CAPACITY`] events is told to refetch (`list_requests`) rather than blocking the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use haven_vault::VaultId;
use haven_vault::protocol::{ServerFrame, ServerMessage};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::bridge::Bridge;

/// Events buffered per vault before a slow socket misses some.
pub const CAPACITY: usize = 256;

/// Something for a vault's sockets.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame for every guardian of the vault.
    Frame(Arc<String>),
    /// A session ended: its sockets re-check their token now.
    SessionRevoked(Uuid),
    /// A guardian was removed: its sockets re-check now.
    GuardianRemoved(Uuid),
    /// A frame for one guardian's sockets only (a FROST envelope or signing package).
    FrameFor(Uuid, Arc<String>),
}

/// The per-vault channels of this process.
#[derive(Debug, Default)]
pub struct Hub {
    vaults: Mutex<HashMap<VaultId, broadcast::Sender<Event>>>,
    bridge: OnceLock<Bridge>,
}

impl Hub {
    /// Subscribes a socket to its vault's events.
    pub fn subscribe(&self, vault: VaultId) -> broadcast::Receiver<Event> {
        let mut vaults = self.vaults.lock().unwrap_or_else(PoisonError::into_inner);
        vaults
            .entry(vault)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Connects the hub to the other replicas (once; a second bridge is ignored).
    pub fn attach(&self, bridge: Bridge) {
        let _ = self.bridge.set(bridge);
    }

    /// Sends `event` to the vault's sockets here and on the other replicas.
    pub fn send(&self, vault: VaultId, event: Event) {
        if let Some(bridge) = self.bridge.get() {
            bridge.publish(vault, &event);
        }
        self.deliver(vault, event);
    }

    /// Sends `event` to the vault's sockets in this process only (none: nothing to do).
    /// Channels nobody listens to any more are dropped on the way.
    pub fn deliver(&self, vault: VaultId, event: Event) {
        let mut vaults = self.vaults.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = vaults.get(&vault)
            && sender.send(event).is_err()
        {
            vaults.remove(&vault);
        }
    }

    /// Pushes `message` to every connected guardian of `vault`.
    pub fn push(&self, vault: VaultId, message: ServerMessage) {
        let text = ServerFrame::push(message).to_text();
        self.send(vault, Event::Frame(Arc::new(text)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_reach_the_vaults_subscribers_only() {
        let hub = Hub::default();
        let (a, b) = (VaultId::generate(), VaultId::generate());
        let mut on_a = hub.subscribe(a);
        let mut on_b = hub.subscribe(b);
        hub.push(a, ServerMessage::Pong);
        match on_a.recv().await.unwrap() {
            Event::Frame(text) => assert!(text.contains("pong")),
            other => panic!("{other:?}"),
        }
        assert!(on_b.try_recv().is_err());
        drop(on_a);
        hub.push(a, ServerMessage::Pong);
        assert!(hub.vaults.lock().unwrap().get(&a).is_none(), "dropped");
    }
}
