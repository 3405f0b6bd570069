//! What `/jobs` shows: each job's schedule, runs and failures in this process, joined with
//! its record in `job_runs` (last run, dead count) at the time of the request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One job's line in `/jobs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStatus {
    /// Job name.
    pub name: &'static str,
    /// `every 500ms` for a dispatcher, the cron expression and time zone for a schedule.
    pub schedule: String,
    /// Runs started by this process.
    pub runs: u64,
    /// Failed attempts in this process (panics included).
    pub failures: u64,
    /// Panicked attempts in this process.
    pub panics: u64,
    /// Runs of this process that ended dead.
    pub dead_here: u64,
    /// When this process last started a run.
    pub last_started_at: Option<DateTime<Utc>>,
    /// When this process last finished a run successfully.
    pub last_succeeded_at: Option<DateTime<Utc>>,
    /// The last failure, redacted.
    pub last_error: Option<String>,
    /// The next scheduled time (schedules only).
    pub next_run: Option<DateTime<Utc>>,
    /// The latest run recorded in `job_runs` by any replica.
    pub last_run: Option<haven_db::JobRun>,
    /// Dead runs in `job_runs` (any replica), waiting for `haven-admin jobs retry`.
    pub dead: i64,
}

/// The process's job statuses, by name.
#[derive(Debug, Default)]
pub struct Board {
    jobs: Mutex<BTreeMap<&'static str, JobStatus>>,
}

impl Board {
    /// Adds a job.
    pub fn register(&self, name: &'static str, schedule: String) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(
                name,
                JobStatus {
                    name,
                    schedule,
                    ..JobStatus::default()
                },
            );
        }
    }

    fn with(&self, name: &str, change: impl FnOnce(&mut JobStatus)) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(status) = jobs.get_mut(name)
        {
            change(status);
        }
    }

    /// A run started.
    pub fn started(&self, name: &str) {
        self.with(name, |s| {
            s.runs += 1;
            s.last_started_at = Some(Utc::now());
        });
        metrics::counter!("haven_worker_job_runs_total", "job" => name.to_owned()).increment(1);
    }

    /// An attempt failed.
    pub fn failed(&self, name: &str, error: &str, panicked: bool) {
        self.with(name, |s| {
            s.failures += 1;
            s.panics += u64::from(panicked);
            s.last_error = Some(error.to_owned());
        });
        metrics::counter!("haven_worker_job_failures_total", "job" => name.to_owned(), "panic" => panicked.to_string()).increment(1);
    }

    /// A run succeeded.
    pub fn succeeded(&self, name: &str) {
        self.with(name, |s| s.last_succeeded_at = Some(Utc::now()));
    }

    /// A run spent its attempts.
    pub fn dead(&self, name: &str) {
        self.with(name, |s| s.dead_here += 1);
        metrics::counter!("haven_worker_job_dead_total", "job" => name.to_owned()).increment(1);
    }

    /// Sets a job's next scheduled time.
    pub fn next(&self, name: &str, at: Option<DateTime<Utc>>) {
        self.with(name, |s| s.next_run = at);
    }

    /// Every job's status, by name.
    pub fn snapshot(&self) -> Vec<JobStatus> {
        self.jobs
            .lock()
            .map(|jobs| jobs.values().cloned().collect())
            .unwrap_or_default()
    }
}
