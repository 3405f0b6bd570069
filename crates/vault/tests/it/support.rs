use std::sync::Arc;

use ed25519_dalek::{Signature, SigningKey};
use haven_core::audit::MemoryAuditLog;
use haven_vault::{
    Amount, Caller, DecisionKind, Guardian, MemoryVaultStore, Operation, OperationKind, Policy,
    Vault, VaultConfig, VaultRequest, VaultService, sign_decision,
};

pub fn device() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

pub fn admin() -> Caller {
    Caller::new("admin-1").with_request_id("req-1")
}

pub struct Member {
    pub guardian: Guardian,
    pub key: SigningKey,
}

impl Member {
    pub fn caller(&self) -> Caller {
        Caller::new(format!("guardian:{}", self.guardian.id))
    }

    pub fn sign(&self, kind: DecisionKind, request: &VaultRequest) -> Signature {
        sign_decision(&self.key, kind, request)
    }
}

pub struct Fixture {
    pub service: Arc<VaultService>,
    pub audit: Arc<MemoryAuditLog>,
    pub vault: Vault,
    pub members: Vec<Member>,
}

pub fn policy(m: u32) -> Policy {
    Policy::new(m)
        .cover(OperationKind::Redemption, Amount(1_000_000))
        .cover(OperationKind::MinterRoleChange, Amount(0))
}

pub fn redemption(amount: u128) -> Operation {
    Operation::new(OperationKind::Redemption)
        .amount(Amount(amount))
        .params(serde_json::json!({"member": "m-42", "payout": {"iban": "DE89370400440532013000"}}))
}

impl Fixture {
    pub async fn new(m: u32, n: usize) -> Self {
        Self::with_config(m, n, VaultConfig::default()).await
    }

    pub async fn with_config(m: u32, n: usize, config: VaultConfig) -> Self {
        let audit = Arc::new(MemoryAuditLog::new());
        let service = Arc::new(VaultService::new(
            Arc::new(MemoryVaultStore::new()),
            audit.clone(),
            config,
        ));
        let mut fixture = Self {
            vault: service
                .create_vault("treasury", policy(m), &admin())
                .await
                .unwrap(),
            service,
            audit,
            members: Vec::new(),
        };
        for _ in 0..n {
            fixture.add_member().await;
        }
        fixture
    }

    /// Invites and joins one more guardian, with a fresh device key.
    pub async fn add_member(&mut self) -> &Member {
        let invitation = self.service.invite(self.vault.id, &admin()).await.unwrap();
        let key = device();
        let guardian = self
            .service
            .join(
                self.vault.id,
                &invitation.code,
                key.verifying_key(),
                &Caller::new("device"),
            )
            .await
            .unwrap();
        self.members.push(Member { guardian, key });
        self.members.last().unwrap()
    }

    pub async fn request(&self, amount: u128) -> VaultRequest {
        self.service
            .create_request(self.vault.id, redemption(amount), &admin())
            .await
            .unwrap()
    }

    /// The actions of the audit log, in order.
    pub fn actions(&self) -> Vec<String> {
        self.audit
            .records()
            .into_iter()
            .map(|r| r.event.action)
            .collect()
    }
}
