//! The monitoring cycle: [`TokenOps::monitor_once`] and the checks it runs on each record
//! (broadcast, reorg) and on the gas price.

use super::*;

/// The gas baseline and whether the feed is currently faulty.
#[derive(Debug, Default)]
pub(super) struct GasWatch {
    pub(super) baseline: Option<u128>,
    pub(super) faulty: bool,
}

impl GasWatch {
    /// Compares a gas reading with the baseline. An absent, zero or implausible reading is a
    /// data-quality fault, reported once until a plausible reading returns, and never moves
    /// the baseline; only plausible, non-spiking prices feed the moving average.
    fn observe(&mut self, price: Option<u128>, config: &ChainConfig) -> Option<ChainAlert> {
        let max_plausible = config.max_plausible_gas_price;
        let Some(price) = price.filter(|p| *p > 0 && *p <= max_plausible) else {
            let first = !self.faulty;
            self.faulty = true;
            return first.then_some(ChainAlert::GasDataQuality {
                gas_price: price,
                max_plausible,
            });
        };
        self.faulty = false;
        let Some(base) = self.baseline else {
            self.baseline = Some(price);
            return None;
        };
        if price as f64 >= base as f64 * config.gas_spike_ratio {
            return Some(ChainAlert::GasSpike {
                gas_price: price,
                baseline: base,
            });
        }
        if config.gas_baseline.is_none() {
            self.baseline = Some((base.saturating_mul(7).saturating_add(price)) / 8);
        }
        None
    }
}

impl TokenOps {
    /// One monitoring cycle at `now` (the worker runs it every minute):
    /// resumes abandoned `queued` records, rebroadcasts `signed` ones, confirms or fails
    /// `broadcast` ones by receipt and depth, replaces stuck ones with bumped fees (same
    /// nonce), moves reorged confirmations back to `broadcast`, and checks the gas price.
    /// Errors on one record are reported and do not stop the cycle.
    pub async fn monitor_once(&self, now: DateTime<Utc>) -> Result<MonitorReport> {
        let mut report = MonitorReport::default();
        let config = &self.inner.config;
        let store = &self.inner.parts.store;

        let price = match self.gas_price().await {
            Ok(price) => Some(price),
            Err(e) => {
                report.errors.push(format!("gas price: {e}"));
                None
            }
        };
        report.gas_price = price;
        if let Some(alert) = self.check_gas(price) {
            self.raise(alert, &mut report).await;
        }

        let grace = chrono_duration(config.queued_grace);
        for record in store.list_by_status(TxStatus::Queued, config.batch).await? {
            if now - record.updated_at < grace {
                continue;
            }
            let tx_id = record.tx_id.clone();
            // Claim it first: of two cycles (or a cycle and a late submitter) one wins.
            let outcome = match self.save(record, now).await {
                Ok(claimed) => self.sign_and_send(claimed).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(_) => report.resumed += 1,
                Err(e) => report.errors.push(format!("{tx_id}: {e}")),
            }
        }

        for record in store.list_by_status(TxStatus::Signed, config.batch).await? {
            let tx_id = record.tx_id.clone();
            match self.resume_signed(record).await {
                Ok(_) => report.rebroadcast += 1,
                Err(e) => report.errors.push(format!("{tx_id}: {e}")),
            }
        }

        let latest = self.block_number().await?;
        for record in store
            .list_by_status(TxStatus::Broadcast, config.batch)
            .await?
        {
            let tx_id = record.tx_id.clone();
            if let Err(e) = self.check_broadcast(record, latest, now, &mut report).await {
                report.errors.push(format!("{tx_id}: {e}"));
            }
        }

        let since = latest.saturating_sub(config.reorg_window);
        for record in store
            .list_by_status(TxStatus::Confirmed, usize::MAX)
            .await?
        {
            if record.block_number.is_none_or(|b| b < since) {
                continue;
            }
            let tx_id = record.tx_id.clone();
            if let Err(e) = self.check_reorg(record, now, &mut report).await {
                report.errors.push(format!("{tx_id}: {e}"));
            }
        }
        Ok(report)
    }

    pub(super) async fn raise(&self, alert: ChainAlert, report: &mut MonitorReport) {
        report.alerts += 1;
        metrics::counter!(crate::metrics::ALERTS, "kind" => alert.kind()).increment(1);
        self.inner.parts.alerts.alert(alert).await;
    }

    pub(super) fn check_gas(&self, price: Option<u128>) -> Option<ChainAlert> {
        let mut watch = self.inner.gas_baseline.lock().ok()?;
        watch.observe(price, &self.inner.config)
    }

    pub(super) async fn check_broadcast(
        &self,
        mut record: TxRecord,
        latest: u64,
        now: DateTime<Utc>,
        report: &mut MonitorReport,
    ) -> Result<()> {
        let config = &self.inner.config;
        let mut hashes: Vec<B256> = record.hash.into_iter().collect();
        hashes.extend(record.previous_hashes.iter().rev().copied());
        for hash in hashes {
            let Some(receipt) = self.receipt(hash).await? else {
                continue;
            };
            let Some(block) = receipt.block_number else {
                continue;
            };
            if latest + 1 < block + config.confirmations {
                return Ok(());
            }
            record.hash = Some(hash);
            record.block_number = Some(block);
            record.block_hash = receipt.block_hash;
            if receipt.status() {
                record.status = TxStatus::Confirmed;
                record.confirmed_at = Some(now);
                record.error = None;
                let (kind, reorged_before) = (record.kind, record.reorgs > 0);
                // Counted only after this cycle's compare-and-set won the move to
                // `confirmed`: a record is confirmed once, by one cycle in one process; a
                // confirmation made anew after a reorg was counted the first time.
                self.save(record, now).await?;
                report.confirmed += 1;
                let confirmed = match kind {
                    _ if reorged_before => None,
                    TxKind::Mint => Some(crate::metrics::TOKENS_MINTED),
                    TxKind::Burn | TxKind::BurnFrom => Some(crate::metrics::TOKENS_BURNED),
                    TxKind::Transfer | TxKind::TransferFrom => None,
                };
                if let Some(name) = confirmed {
                    metrics::counter!(name).increment(1);
                }
            } else {
                record.status = TxStatus::Failed;
                record.error = Some("reverted (receipt status 0)".to_owned());
                let tx_id = record.tx_id.clone();
                self.save(record, now).await?;
                report.failed += 1;
                self.raise(
                    ChainAlert::Failed {
                        tx_id,
                        hash,
                        block_number: block,
                    },
                    report,
                )
                .await;
            }
            return Ok(());
        }

        // No receipt for any of our versions.
        let Some(since) = record.broadcast_at else {
            return Ok(());
        };
        let wait = config
            .pending_threshold
            .saturating_mul(1u32 << record.replacements.min(16));
        if now - since < chrono_duration(wait) {
            return Ok(());
        }
        let Some(nonce) = record.nonce else {
            return Ok(());
        };
        if self.mined_nonce().await? > nonce {
            // Our nonce was mined but none of our hashes: a foreign transaction took it.
            // Re-check our hashes first, a receipt may have appeared meanwhile.
            for hash in record.hash.iter().chain(record.previous_hashes.iter()) {
                if self.receipt(*hash).await?.is_some() {
                    return Ok(());
                }
            }
            record.status = TxStatus::Replaced;
            record.error = Some(format!("nonce {nonce} used by another transaction"));
            self.save(record, now).await?;
            report.nonce_taken += 1;
            return Ok(());
        }
        if record.replacements == 0 {
            self.raise(
                ChainAlert::Stuck {
                    tx_id: record.tx_id.clone(),
                    nonce,
                    pending_for: (now - since).to_std().unwrap_or_default(),
                },
                report,
            )
            .await;
        }
        let old = Fees {
            max_fee_per_gas: record.max_fee_per_gas.unwrap_or(0),
            max_priority_fee_per_gas: record.max_priority_fee_per_gas.unwrap_or(0),
        };
        let bumped = if record.replacements >= config.max_replacements {
            None
        } else {
            fees::bump(old, self.current_fees().await?, &config.fees)
        };
        let Some(bumped) = bumped else {
            if record.replacements < config.max_replacements || record.error.is_none() {
                self.raise(
                    ChainAlert::ReplacementExhausted {
                        tx_id: record.tx_id.clone(),
                        replacements: record.replacements,
                    },
                    report,
                )
                .await;
            }
            // Keep the current version alive in the pool.
            record.error = Some("replacement exhausted; rebroadcasting".to_owned());
            record.broadcast_at = Some(now);
            let record = self.save(record, now).await?;
            self.send(record).await?;
            return Ok(());
        };
        let (hash, raw) = self.sign(&record, nonce, bumped).await?;
        if let Some(old_hash) = record.hash {
            record.previous_hashes.push(old_hash);
        }
        record.hash = Some(hash);
        record.raw = Some(raw);
        record.max_fee_per_gas = Some(bumped.max_fee_per_gas);
        record.max_priority_fee_per_gas = Some(bumped.max_priority_fee_per_gas);
        record.replacements += 1;
        record.broadcast_at = Some(now);
        let record = self.save(record, now).await?;
        report.replaced += 1;
        self.send(record).await?;
        Ok(())
    }

    pub(super) async fn check_reorg(
        &self,
        mut record: TxRecord,
        now: DateTime<Utc>,
        report: &mut MonitorReport,
    ) -> Result<()> {
        let Some(hash) = record.hash else {
            return Ok(());
        };
        let receipt = self.receipt(hash).await?;
        let still_there = receipt.is_some_and(|r| r.block_hash == record.block_hash);
        if still_there {
            return Ok(());
        }
        let block_number = record.block_number.unwrap_or_default();
        record.status = TxStatus::Broadcast;
        record.block_number = None;
        record.block_hash = None;
        record.confirmed_at = None;
        record.reorgs = record.reorgs.saturating_add(1);
        record.broadcast_at = Some(now);
        record.error = Some(format!("block {block_number} left the chain"));
        let tx_id = record.tx_id.clone();
        let record = self.save(record, now).await?;
        report.reorged += 1;
        self.raise(
            ChainAlert::Reorged {
                tx_id,
                block_number,
            },
            report,
        )
        .await;
        // The reorg may have dropped it from the pool too.
        self.send(record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    /// Zero, absent and absurd readings are data-quality faults, reported once per episode,
    /// and none of them moves the baseline or makes the next normal price look like a spike.
    #[test]
    fn implausible_gas_readings_are_faults_and_leave_the_baseline_alone() {
        let config = ChainConfig::default();
        let mut watch = GasWatch::default();
        assert_eq!(watch.observe(Some(10 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(10 * GWEI));
        let fault = watch.observe(Some(0), &config);
        assert!(
            matches!(
                fault,
                Some(ChainAlert::GasDataQuality {
                    gas_price: Some(0),
                    ..
                })
            ),
            "{fault:?}"
        );
        assert_eq!(watch.observe(None, &config), None, "one alert per episode");
        assert_eq!(watch.observe(Some(2 * 1_000_000 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(10 * GWEI), "the baseline is untouched");
        assert_eq!(
            watch.observe(Some(11 * GWEI), &config),
            None,
            "no spike after"
        );
        let fault = watch.observe(Some(u128::MAX), &config);
        assert!(matches!(fault, Some(ChainAlert::GasDataQuality { .. })));
        let fault = watch.observe(None, &config);
        assert_eq!(fault, None, "still the same episode");
        let spike = watch.observe(Some(30 * GWEI), &config);
        assert!(
            matches!(spike, Some(ChainAlert::GasSpike { .. })),
            "{spike:?}"
        );
    }

    #[test]
    fn an_absent_first_reading_is_a_fault_and_sets_no_baseline() {
        let config = ChainConfig::default();
        let mut watch = GasWatch::default();
        assert!(matches!(
            watch.observe(None, &config),
            Some(ChainAlert::GasDataQuality {
                gas_price: None,
                ..
            })
        ));
        assert_eq!(watch.baseline, None);
        assert_eq!(watch.observe(Some(5 * GWEI), &config), None);
        assert_eq!(watch.baseline, Some(5 * GWEI));
    }
}
