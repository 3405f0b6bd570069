//! Signing and sending: a record is saved with a compare-and-set, signed through custody
//! under a nonce lease, recorded signed, then broadcast; plus the RPC reads behind them.

use super::*;

impl TokenOps {
    /// Writes `record` with the next version; [`Error::Conflict`] if someone else did first.
    pub(super) async fn save(&self, mut record: TxRecord, now: DateTime<Utc>) -> Result<TxRecord> {
        record.version += 1;
        record.updated_at = now;
        if self.inner.parts.store.update(&record).await? {
            Ok(record)
        } else {
            Err(Error::Conflict {
                tx_id: record.tx_id,
            })
        }
    }

    /// Signs a `queued` record this caller owns, records it, commits the nonce, broadcasts.
    pub(super) async fn sign_and_send(&self, mut record: TxRecord) -> Result<TxRecord> {
        let inner = &self.inner;
        // Fail fast while the node is known to be down; the record stays queued.
        drop(inner.parts.breaker.acquire().await?);
        let fees = self.current_fees().await?;
        let lease = inner.nonces.reserve(&inner.nonce_key).await?;
        let signed = self.sign(&record, lease.nonce, fees).await;
        let (hash, raw) = match signed {
            Ok(signed) => signed,
            Err(e) => return Err(self.release(&lease, e).await),
        };
        record.status = TxStatus::Signed;
        record.nonce = Some(lease.nonce);
        record.hash = Some(hash);
        record.raw = Some(raw);
        record.max_fee_per_gas = Some(fees.max_fee_per_gas);
        record.max_priority_fee_per_gas = Some(fees.max_priority_fee_per_gas);
        record.nonce_lease = Some(lease.lease_id);
        let record = match self.save(record, Utc::now()).await {
            Ok(record) => record,
            Err(e) => return Err(self.release(&lease, e).await),
        };
        #[cfg(feature = "test-utils")]
        {
            let hook = inner.fault.lock().ok().and_then(|h| h.clone());
            if hook.is_some_and(|h| h.stop_before_commit(&record)) {
                return Err(Error::Interrupted {
                    tx_id: record.tx_id,
                    stage: "recorded",
                });
            }
        }
        // Durably recorded: from here on the nonce belongs to this record.
        inner.nonces.commit(&lease).await?;

        #[cfg(feature = "test-utils")]
        {
            let hook = inner.fault.lock().ok().and_then(|h| h.clone());
            if hook.is_some_and(|h| h.stop_after_signed(&record)) {
                return Err(Error::Interrupted {
                    tx_id: record.tx_id,
                    stage: "signed",
                });
            }
        }
        self.broadcast(record).await
    }

    /// Broadcasts a `signed` record found after its signer stopped: its nonce lease is
    /// committed first (idempotent). A signer that died between recording and committing
    /// left the lease to expire; when its nonce went to another lease meanwhile, the signed
    /// bytes never left that process and must never leave now — the record goes back to
    /// `queued` and is signed anew with a fresh nonce.
    pub(super) async fn resume_signed(&self, record: TxRecord) -> Result<TxRecord> {
        let (Some(nonce), Some(lease_id)) = (record.nonce, record.nonce_lease) else {
            return self.broadcast(record).await;
        };
        let now = Utc::now();
        let lease = Lease {
            key: self.inner.nonce_key,
            nonce,
            lease_id,
            leased_at: now,
            expires_at: now,
            chain_synced: true,
        };
        match self.inner.nonces.commit(&lease).await {
            Ok(()) => self.broadcast(record).await,
            Err(haven_nonce::Error::LeaseLost { .. }) => {
                tracing::warn!(tx_id = %record.tx_id, nonce, "the signer stopped before committing its nonce and the nonce went to another transaction: signing anew");
                let mut queued = record;
                queued.status = TxStatus::Queued;
                queued.nonce = None;
                queued.nonce_lease = None;
                queued.hash = None;
                queued.raw = None;
                queued.max_fee_per_gas = None;
                queued.max_priority_fee_per_gas = None;
                queued.error = Some(format!("nonce {nonce} lost before broadcast; signed anew"));
                let queued = self.save(queued, now).await?;
                self.sign_and_send(queued).await
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn release(&self, lease: &Lease, error: Error) -> Error {
        if let Err(release_error) = self.inner.nonces.release(lease).await {
            tracing::warn!(error = %release_error, nonce = lease.nonce, "nonce release failed; the lease will expire");
        }
        error
    }

    /// Sends a `signed` record's raw transaction and marks it `broadcast`.
    pub(super) async fn broadcast(&self, record: TxRecord) -> Result<TxRecord> {
        let now = Utc::now();
        match self.send_raw(&record).await {
            Ok(()) => {
                let mut record = record;
                record.status = TxStatus::Broadcast;
                record.attempts += 1;
                record.broadcast_at = Some(now);
                record.error = None;
                let tx_id = record.tx_id.clone();
                match self.save(record, now).await {
                    Ok(record) => Ok(record),
                    // A concurrent rebroadcast of the same bytes got there first.
                    Err(Error::Conflict { .. }) => {
                        self.get(&tx_id).await?.ok_or(Error::NotFound { tx_id })
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e @ Error::CircuitOpen { .. }) => Err(e),
            Err(e) => {
                let mut failed = record;
                failed.attempts += 1;
                failed.error = Some(e.to_string());
                // Best effort: the error is what the caller needs to see.
                let _ = self.save(failed, now).await;
                Err(e)
            }
        }
    }

    /// Sends the record's current raw transaction; "already known" counts as sent.
    pub(super) async fn send(&self, record: TxRecord) -> Result<()> {
        self.send_raw(&record).await
    }

    pub(super) async fn send_raw(&self, record: &TxRecord) -> Result<()> {
        let Some(raw) = record.raw.clone() else {
            return Err(Error::InvalidTransition {
                tx_id: record.tx_id.clone(),
                status: record.status,
                operation: "broadcast without a signed transaction",
            });
        };
        let provider = &self.inner.parts.provider;
        let result = self
            .inner
            .parts
            .breaker
            .call_classified(transport_outcome, || async move {
                provider.send_raw_transaction(&raw).await.map(|_| ())
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(CallError::Resilience(e)) => Err(e.into()),
            Err(CallError::Operation(e)) => match e.as_error_resp() {
                Some(payload) if is_already_known(&payload.message) => Ok(()),
                // A concurrent submitter's broadcast of these same bytes was already mined.
                Some(payload)
                    if is_nonce_too_low(&payload.message) && self.is_mined(record).await? =>
                {
                    Ok(())
                }
                Some(payload) => Err(Error::Rejected {
                    tx_id: record.tx_id.clone(),
                    message: payload.message.to_string(),
                }),
                None => Err(Error::rpc("eth_sendRawTransaction", e)),
            },
        }
    }

    /// Whether the current or an earlier version of the record has a receipt.
    pub(super) async fn is_mined(&self, record: &TxRecord) -> Result<bool> {
        for hash in record.hash.iter().chain(record.previous_hashes.iter()) {
            if self.receipt(*hash).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) async fn sign(
        &self,
        record: &TxRecord,
        nonce: u64,
        fees: Fees,
    ) -> Result<(B256, Bytes)> {
        let input = calldata(record)?;
        let tx = TxEip1559 {
            chain_id: record.chain_id,
            nonce,
            gas_limit: record.gas_limit,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: CallTarget::Call(record.token),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let envelope = self
            .inner
            .parts
            .custody
            .sign_transaction(
                self.inner.key.clone(),
                TypedTransaction::Eip1559(tx),
                &self.inner.parts.caller,
            )
            .await?;
        Ok((*envelope.tx_hash(), envelope.encoded_2718().into()))
    }

    pub(super) async fn rpc<T: Send, F, Fut>(&self, method: &'static str, call: F) -> Result<T>
    where
        F: FnOnce(DynProvider) -> Fut + Send,
        Fut: Future<Output = std::result::Result<T, TransportError>> + Send,
    {
        let provider = self.inner.parts.provider.clone();
        self.inner
            .parts
            .breaker
            .call_classified(transport_outcome, || call(provider))
            .await
            .map_err(|e| match e {
                CallError::Resilience(e) => e.into(),
                CallError::Operation(e) => Error::rpc(method, e),
            })
    }

    pub(super) async fn current_fees(&self) -> Result<Fees> {
        let history = self
            .rpc("eth_feeHistory", |p| async move {
                p.get_fee_history(10, alloy::eips::BlockNumberOrTag::Latest, &[50.0])
                    .await
            })
            .await?;
        Ok(fees::from_history(&history, &self.inner.config.fees))
    }

    pub(super) async fn gas_price(&self) -> Result<u128> {
        self.rpc("eth_gasPrice", |p| async move { p.get_gas_price().await })
            .await
    }

    pub(super) async fn block_number(&self) -> Result<u64> {
        self.rpc(
            "eth_blockNumber",
            |p| async move { p.get_block_number().await },
        )
        .await
    }

    pub(super) async fn mined_nonce(&self) -> Result<u64> {
        let from = self.inner.from;
        self.rpc("eth_getTransactionCount", move |p| async move {
            p.get_transaction_count(from).latest().await
        })
        .await
    }

    pub(super) async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>> {
        self.rpc("eth_getTransactionReceipt", move |p| async move {
            p.get_transaction_receipt(hash).await
        })
        .await
    }
}

/// The token call a record makes, from the record alone: a first signing, a replacement
/// with bumped fees and a retry after a revert all encode the same call.
pub(super) fn calldata(record: &TxRecord) -> Result<Bytes> {
    let missing = |reason| Error::InvalidRequest {
        tx_id: record.tx_id.clone(),
        reason,
    };
    let to = || {
        record
            .to
            .ok_or_else(|| missing("the recipient `to` is missing"))
    };
    let holder = || {
        record
            .holder
            .ok_or_else(|| missing("the custodial `holder` is missing"))
    };
    let amount = record.amount;
    let input = match record.kind {
        TxKind::Mint => HavenToken::mintCall { to: to()?, amount }.abi_encode(),
        TxKind::Burn => HavenToken::burnCall { amount }.abi_encode(),
        TxKind::Transfer => HavenToken::transferCall { to: to()?, amount }.abi_encode(),
        TxKind::BurnFrom => HavenToken::custodianBurnCall {
            from: holder()?,
            amount,
        }
        .abi_encode(),
        TxKind::TransferFrom => HavenToken::custodianTransferCall {
            from: holder()?,
            to: to()?,
            amount,
        }
        .abi_encode(),
    };
    Ok(input.into())
}

pub(super) fn is_nonce_too_low(message: &str) -> bool {
    message.to_ascii_lowercase().contains("nonce too low")
}

pub(super) fn is_already_known(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already known") || m.contains("already imported") || m.contains("known transaction")
}

pub(super) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
