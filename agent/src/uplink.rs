//! The uplink: sends queued bundles to the central system over mutually authenticated TLS and files the receipts.
//!
//! reqwest over rustls, with the station certificate as client identity, only the central system's root CA trusted
//! (no system roots), HTTPS only, connect and request timeouts. Outcomes are classified:
//!
//! - delivered: 200/201 with a receipt that verifies against the pinned central certificate and names this
//!   bundle and manifest digest; the outbox stores the receipt and purges the bundle;
//! - transient: network or TLS failure, 408, 429 (honouring Retry-After), 5xx, a receipt that does not verify, and
//!   403 (the station's certificate is refused: every bundle would be, so none is quarantined; the error says why);
//!   retried with capped exponential backoff and jitter;
//! - permanent: other 4xx (422 the bundle fails verification, 413 too large, 400 malformed): quarantined, kept.
//!
//! Uploads are idempotent by bundle id (the central answers a repeat with the same receipt), so a bundle that was
//! stored but whose receipt was lost is simply sent again.
//!
//! Every bundle a drain claims leaves `sending` before the drain returns: its outcome is filed, or, when filing
//! fails (a write the database refuses: disk full, I/O error) or its upload task died, it is released back to
//! `queued`. If even the release fails, the uplink remembers the ids and releases them before its next claim; the
//! drain reports the failure as an error after the whole batch is dealt with.

use crate::outbox::{Claimed, Outbox, OutboxError};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tamga_bundle::{pki, receipt};
use tracing::{info, warn};

/// What one upload came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        receipt: String,
    },
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        reason: String,
    },
}

/// Errors building the uplink.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("uplink TLS identity or trust: {0}")]
    Tls(String),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("the outbox lock is poisoned (a thread panicked while holding it)")]
    Poisoned,
    #[error("an upload task failed: {0}; its bundle goes back to the queue")]
    Task(String),
}

/// Counts of one drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub retried: usize,
    pub quarantined: usize,
    /// The last transient failure's reason (why the link looks down).
    pub last_error: Option<String>,
}

/// The uplink to one central system.
#[derive(Debug, Clone)]
pub struct Uplink {
    client: reqwest::Client,
    url: String,
    central_cert_der: Vec<u8>,
    concurrency: usize,
    /// Bundles claimed by a drain whose outcome could not be filed and whose release failed too: released before
    /// the next claim.
    stranded: Arc<Mutex<BTreeSet<String>>>,
}

/// Backoff before attempt `attempts + 1`: 1 s doubling to at most 5 min, with ±20 % jitter.
pub fn backoff(attempts: u32, jitter_seed: u64) -> Duration {
    let base = 1000u64.saturating_mul(1 << attempts.min(9)).min(300_000);
    let jitter = (jitter_seed % 400) as i64 - 200; // per mille
    Duration::from_millis((base as i64 + base as i64 * jitter / 1000).max(100) as u64)
}

impl Uplink {
    /// `central_url` like `https://127.0.0.1:8443`; PEM texts of the station certificate chain and key, the
    /// central root CA, and the central certificate (pinned for receipts).
    pub fn new(
        central_url: &str,
        station_chain_pem: &str,
        station_key_pem: &str,
        central_root_pem: &str,
        central_cert_pem: &str,
        concurrency: usize,
    ) -> Result<Uplink, UplinkError> {
        let tls = |e: reqwest::Error| UplinkError::Tls(e.to_string());
        let identity =
            reqwest::Identity::from_pem(format!("{station_key_pem}\n{station_chain_pem}").as_bytes())
                .map_err(tls)?;
        let root = reqwest::Certificate::from_pem(central_root_pem.as_bytes()).map_err(tls)?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root)
            .identity(identity)
            .https_only(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(tls)?;
        let central_cert_der = pki::certs_from_pem(central_cert_pem)
            .map_err(|e| UplinkError::Tls(e.to_string()))?
            .remove(0);
        Ok(Uplink {
            client,
            url: central_url.trim_end_matches('/').to_owned(),
            central_cert_der,
            concurrency: concurrency.max(1),
            stranded: Arc::default(),
        })
    }

    /// Whether the central system answers over mutual TLS (`GET /healthz`), for the daemon's start-up report.
    #[tracing::instrument(name = "central_check", skip(self), fields(url = %self.url))]
    pub async fn check(&self) -> Result<(), String> {
        let r = self
            .client
            .get(format!("{}/healthz", self.url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| {
                // reqwest's message is the outermost layer only: the cause (DNS, refused, TLS) is in the chain.
                let mut msg = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    msg.push_str(": ");
                    msg.push_str(&cause.to_string());
                    source = cause.source();
                }
                msg
            })?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", r.status()))
        }
    }

    /// Sends one bundle.
    #[tracing::instrument(name = "upload", skip(self, jwe), fields(bundle = %bundle_id))]
    pub async fn send(&self, bundle_id: &str, manifest_sha256: &str, jwe: &str) -> Outcome {
        let resp = match self
            .client
            .post(format!("{}/v1/bundles", self.url))
            .body(jwe.to_owned())
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Transient {
                    reason: format!("central unreachable: {e}"),
                    retry_after: None,
                };
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        let message = body["message"].as_str().unwrap_or("").to_owned();
        match status.as_u16() {
            200 | 201 => {
                let Some(r) = body["receipt"].as_str() else {
                    return Outcome::Transient {
                        reason: "the central answered without a receipt".into(),
                        retry_after: None,
                    };
                };
                match receipt::verify(r, &self.central_cert_der, bundle_id, manifest_sha256) {
                    Ok(_) => Outcome::Delivered {
                        receipt: r.to_owned(),
                    },
                    Err(e) => Outcome::Transient {
                        reason: format!("receipt refused: {e}"),
                        retry_after: None,
                    },
                }
            }
            403 => Outcome::Transient {
                reason: format!(
                    "the central refuses this station (403): {message}; check `tamga certs status`"
                ),
                retry_after: Some(Duration::from_secs(300)),
            },
            408 | 429 | 500..=599 => Outcome::Transient {
                reason: format!("central answered {status}: {message}"),
                retry_after,
            },
            _ => Outcome::Permanent {
                reason: format!("central rejected the bundle ({status}): {message}"),
            },
        }
    }

    /// Sends everything due, `concurrency` at a time, until nothing is due; files each outcome in the outbox.
    /// When nothing is due but bundles wait out their backoff, the oldest is sent as a probe: if it goes through,
    /// the link is back and every waiting bundle becomes due at once.
    ///
    /// A failure to file an outcome does not stop the batch: the other outcomes are filed, the bundles left
    /// unfiled are released back to `queued`, and then the first failure is returned.
    pub async fn drain(&self, outbox: &Mutex<Outbox>) -> Result<DrainReport, UplinkError> {
        self.release_stranded(outbox)?;
        let mut report = DrainReport::default();
        let mut probed = false;
        loop {
            let batch: Vec<Claimed> = {
                let mut o = outbox.lock().map_err(|_| UplinkError::Poisoned)?;
                let due = o.claim_due(self.concurrency)?;
                if due.is_empty() && !probed {
                    probed = true;
                    o.claim_oldest()?.into_iter().collect()
                } else {
                    due
                }
            };
            if batch.is_empty() {
                return Ok(report);
            }
            let before = report.delivered;
            // Claimed and not yet filed.
            let mut unfiled: BTreeSet<String> = batch.iter().map(|c| c.bundle_id.clone()).collect();
            let mut failure: Option<UplinkError> = None;
            let mut set = tokio::task::JoinSet::new();
            for c in batch {
                let up = self.clone();
                set.spawn(async move {
                    let outcome = up.send(&c.bundle_id, &c.manifest_sha256, &c.jwe).await;
                    (c, outcome)
                });
            }
            while let Some(joined) = set.join_next().await {
                let (c, outcome) = match joined {
                    Ok(done) => done,
                    Err(e) => {
                        warn!(error = %e, "upload task failed; its bundle goes back to the queue");
                        failure.get_or_insert(UplinkError::Task(e.to_string()));
                        continue;
                    }
                };
                match file(outbox, &c, outcome, &mut report) {
                    Ok(()) => {
                        unfiled.remove(&c.bundle_id);
                    }
                    Err(e) => {
                        warn!(bundle = %c.bundle_id, error = %e, "cannot file the upload's outcome; the bundle goes back to the queue");
                        failure.get_or_insert(e);
                    }
                }
            }
            if !unfiled.is_empty() {
                self.release(outbox, unfiled);
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if report.delivered > before {
                // Something went through: whatever waits for a backoff can go now.
                outbox.lock().map_err(|_| UplinkError::Poisoned)?.make_all_due()?;
            }
        }
    }

    /// Releases claimed bundles back to `queued`; those that cannot be released wait in `stranded`.
    fn release(&self, outbox: &Mutex<Outbox>, ids: BTreeSet<String>) {
        let ids: Vec<String> = ids.into_iter().collect();
        let released = match outbox.lock() {
            Ok(mut o) => o.release(&ids).map_err(UplinkError::from),
            Err(_) => Err(UplinkError::Poisoned),
        };
        if let Err(e) = released {
            warn!(bundles = ?ids, error = %e, "cannot release claimed bundles; the next drain tries again");
            let mut stranded = self
                .stranded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            stranded.extend(ids);
        }
    }

    /// Releases what an earlier drain could not; fails (and keeps them) while the outbox still refuses.
    fn release_stranded(&self, outbox: &Mutex<Outbox>) -> Result<(), UplinkError> {
        let mut stranded = self
            .stranded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stranded.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = stranded.iter().cloned().collect();
        outbox.lock().map_err(|_| UplinkError::Poisoned)?.release(&ids)?;
        info!(bundles = ?ids, "released bundles an earlier drain left claimed");
        stranded.clear();
        Ok(())
    }
}

/// Files one upload's outcome in the outbox and counts it.
fn file(
    outbox: &Mutex<Outbox>,
    c: &Claimed,
    outcome: Outcome,
    report: &mut DrainReport,
) -> Result<(), UplinkError> {
    let mut o = outbox.lock().map_err(|_| UplinkError::Poisoned)?;
    match outcome {
        Outcome::Delivered { receipt } => {
            o.mark_delivered(&c.bundle_id, &receipt)?;
            info!(bundle = %c.bundle_id, "delivered");
            report.delivered += 1;
        }
        Outcome::Transient { reason, retry_after } => {
            let wait = retry_after.unwrap_or_else(|| backoff(c.attempts, seed(&c.bundle_id)));
            let next = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + wait.as_millis() as i64;
            o.mark_retry(&c.bundle_id, &reason, next)?;
            warn!(bundle = %c.bundle_id, %reason, retry_in = ?wait, "upload failed; will retry");
            report.retried += 1;
            report.last_error = Some(reason);
        }
        Outcome::Permanent { reason } => {
            o.mark_quarantined(&c.bundle_id, &reason)?;
            warn!(bundle = %c.bundle_id, %reason, "quarantined");
            report.quarantined += 1;
        }
    }
    Ok(())
}

fn seed(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_with_bounded_jitter() {
        assert!((800..=1200).contains(&backoff(0, 7).as_millis()));
        assert!((1600..=2400).contains(&backoff(1, 7).as_millis()));
        for seed in 0..1000 {
            assert!(backoff(30, seed) <= Duration::from_millis(360_000));
        }
    }
}
