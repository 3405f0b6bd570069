//! The worker's job runs (`job_runs`): the claim that lets exactly one replica run a
//! scheduled occurrence, each run's attempts and last error, and the dead letters an
//! operator can send back with `haven-admin jobs retry`.
//!
//! A run is `running` (owned until its lease ends), `succeeded`, `dead` (every attempt
//! failed) or `queued` (waiting for any replica: a retry, a run given back at shutdown, or
//! one whose owner died and whose lease ran out).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::pool::get;
use crate::{Error, PgPool, Result};

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobRunState {
    /// Claimed by a worker until its lease ends.
    Running,
    /// Done.
    Succeeded,
    /// Every attempt failed.
    Dead,
    /// Waiting for a worker to claim it.
    Queued,
}

impl JobRunState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobRunState::Running => "running",
            JobRunState::Succeeded => "succeeded",
            JobRunState::Dead => "dead",
            JobRunState::Queued => "queued",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "running" => JobRunState::Running,
            "succeeded" => JobRunState::Succeeded,
            "dead" => JobRunState::Dead,
            "queued" => JobRunState::Queued,
            _ => return None,
        })
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRun {
    /// Its id (what `haven-admin jobs retry` takes).
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// The scheduled time it stands for (a pulse's time for a dispatcher).
    pub occurrence: DateTime<Utc>,
    /// Its state.
    pub state: JobRunState,
    /// The worker that holds or last held it.
    pub owner: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's error, redacted.
    pub last_error: Option<String>,
    /// When its last claim started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (succeeded or dead).
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    job: String,
    #[diesel(sql_type = Timestamptz)]
    occurrence: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    started_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for JobRun {
    type Error = Error;
    fn try_from(row: Row) -> Result<Self> {
        Ok(JobRun {
            state: JobRunState::parse(&row.state).ok_or_else(|| Error::Corrupt {
                table: "job_runs",
                reason: format!("unknown state {:?}", row.state),
            })?,
            id: row.id,
            job: row.job,
            occurrence: row.occurrence,
            owner: row.owner,
            attempts: row.attempts,
            last_error: row.last_error,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

const COLUMNS: &str =
    "id, job, occurrence, state, owner, attempts, last_error, started_at, finished_at";

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Which runs [`PgJobRuns::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct JobRunFilter {
    /// Only this job's runs.
    pub job: Option<String>,
    /// Only runs in this state.
    pub state: Option<JobRunState>,
    /// At most this many, newest first (default 50, at most 1000).
    pub limit: Option<i64>,
}

/// The `job_runs` table.
#[derive(Debug, Clone)]
pub struct PgJobRuns {
    pool: PgPool,
}

fn lease_secs(lease: Duration) -> i64 {
    i64::try_from(lease.as_secs())
        .unwrap_or(i64::MAX / 2)
        .max(1)
}

impl PgJobRuns {
    /// Over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Claims the occurrence `occurrence` of `job` for `owner` for `lease`; `None` when
    /// another claim of it exists (another replica runs it, or it has run).
    pub async fn claim(
        &self,
        job: &str,
        occurrence: DateTime<Utc>,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<i64>> {
        let mut conn = get(&self.pool).await?;
        let row: Option<Id> = diesel::sql_query(
            "INSERT INTO job_runs (job, occurrence, state, owner, lease_until, started_at) \
             VALUES ($1, $2, 'running', $3, now() + make_interval(secs => $4), now()) \
             ON CONFLICT (job, occurrence) DO NOTHING RETURNING id",
        )
        .bind::<Text, _>(job)
        .bind::<Timestamptz, _>(occurrence)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(lease_secs(lease))
        .get_result(&mut conn)
        .await
        .map(Some)
        .or_else(not_found_is_none)?;
        Ok(row.map(|r| r.id))
    }

    /// Claims the queued run `id` for `owner`; false when it is not queued (any more).
    pub async fn claim_queued(&self, id: i64, owner: &str, lease: Duration) -> Result<bool> {
        let mut conn = get(&self.pool).await?;
        let claimed = diesel::sql_query(
            "UPDATE job_runs SET state = 'running', owner = $2, attempts = 0, \
             lease_until = now() + make_interval(secs => $3), started_at = now(), \
             finished_at = NULL WHERE id = $1 AND state = 'queued'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(lease_secs(lease))
        .execute(&mut conn)
        .await?;
        Ok(claimed == 1)
    }

    /// Queues again every run whose owner's lease ran out (the owner died); the count.
    pub async fn requeue_expired(&self) -> Result<usize> {
        let mut conn = get(&self.pool).await?;
        Ok(diesel::sql_query(
            "UPDATE job_runs SET state = 'queued', owner = NULL, lease_until = NULL \
             WHERE state = 'running' AND lease_until < now()",
        )
        .execute(&mut conn)
        .await?)
    }

    /// The queued runs of `jobs`, oldest first.
    pub async fn queued(&self, jobs: &[String], limit: i64) -> Result<Vec<JobRun>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE state = 'queued' AND job = ANY($1) \
             ORDER BY id LIMIT $2"
        ))
        .bind::<diesel::sql_types::Array<Text>, _>(jobs)
        .bind::<BigInt, _>(limit)
        .load(&mut conn)
        .await?;
        rows.into_iter().map(JobRun::try_from).collect()
    }

    /// Records a failed attempt of the run `id` held by `owner`.
    pub async fn record_failure(
        &self,
        id: i64,
        owner: &str,
        attempts: i32,
        error: &str,
    ) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::sql_query(
            "UPDATE job_runs SET attempts = $3, last_error = $4 \
             WHERE id = $1 AND owner = $2 AND state = 'running'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .bind::<Integer, _>(attempts)
        .bind::<Text, _>(error)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Ends the run `id` held by `owner`: succeeded, or dead with `error`.
    pub async fn finish(
        &self,
        id: i64,
        owner: &str,
        attempts: i32,
        error: Option<&str>,
    ) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::sql_query(
            "UPDATE job_runs SET state = CASE WHEN $4::text IS NULL THEN 'succeeded' ELSE 'dead' END, \
             attempts = $3, last_error = COALESCE($4, last_error), owner = $2, \
             lease_until = NULL, finished_at = now() \
             WHERE id = $1 AND owner = $2 AND state = 'running'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .bind::<Integer, _>(attempts)
        .bind::<Nullable<Text>, _>(error)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Records a dispatcher pulse whose every attempt failed, as a dead run; its id.
    pub async fn record_dead_pulse(
        &self,
        job: &str,
        occurrence: DateTime<Utc>,
        owner: &str,
        attempts: i32,
        error: &str,
    ) -> Result<i64> {
        let mut conn = get(&self.pool).await?;
        let row: Id = diesel::sql_query(
            "INSERT INTO job_runs (job, occurrence, state, owner, attempts, last_error, \
             started_at, finished_at) VALUES ($1, $2, 'dead', $3, $4, $5, now(), now()) \
             ON CONFLICT (job, occurrence) DO UPDATE SET attempts = EXCLUDED.attempts, \
             last_error = EXCLUDED.last_error RETURNING id",
        )
        .bind::<Text, _>(job)
        .bind::<Timestamptz, _>(occurrence)
        .bind::<Text, _>(owner)
        .bind::<Integer, _>(attempts)
        .bind::<Text, _>(error)
        .get_result(&mut conn)
        .await?;
        Ok(row.id)
    }

    /// Gives the run `id` back (shutdown before it finished): any replica runs it again.
    pub async fn give_back(&self, id: i64, owner: &str) -> Result<()> {
        let mut conn = get(&self.pool).await?;
        diesel::sql_query(
            "UPDATE job_runs SET state = 'queued', owner = NULL, lease_until = NULL \
             WHERE id = $1 AND owner = $2 AND state = 'running'",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// Sends the dead run `id` back to the queue; refused unless it is dead.
    pub async fn retry(&self, id: i64) -> Result<JobRun> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(format!(
            "UPDATE job_runs SET state = 'queued', owner = NULL, lease_until = NULL, \
             finished_at = NULL WHERE id = $1 AND state = 'dead' RETURNING {COLUMNS}"
        ))
        .bind::<BigInt, _>(id)
        .load(&mut conn)
        .await?;
        if let Some(row) = rows.into_iter().next() {
            return JobRun::try_from(row);
        }
        match self.get(id).await? {
            None => Err(Error::Invalid {
                reason: format!("no job run {id}"),
            }),
            Some(run) => Err(Error::Invalid {
                reason: format!(
                    "job run {id} is {}, only a dead run can be retried",
                    run.state.as_str()
                ),
            }),
        }
    }

    /// The run `id`.
    pub async fn get(&self, id: i64) -> Result<Option<JobRun>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> =
            diesel::sql_query(format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"))
                .bind::<BigInt, _>(id)
                .load(&mut conn)
                .await?;
        rows.into_iter().next().map(JobRun::try_from).transpose()
    }

    /// Runs, newest first.
    pub async fn list(&self, filter: &JobRunFilter) -> Result<Vec<JobRun>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE ($1::text IS NULL OR job = $1) \
             AND ($2::text IS NULL OR state = $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind::<Nullable<Text>, _>(filter.job.as_deref())
        .bind::<Nullable<Text>, _>(filter.state.map(JobRunState::as_str))
        .bind::<BigInt, _>(filter.limit.unwrap_or(50).clamp(1, 1000))
        .load(&mut conn)
        .await?;
        rows.into_iter().map(JobRun::try_from).collect()
    }

    /// The latest run of `job` (by occurrence), if it ever ran.
    pub async fn latest(&self, job: &str) -> Result<Option<JobRun>> {
        let mut conn = get(&self.pool).await?;
        let rows: Vec<Row> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE job = $1 ORDER BY occurrence DESC LIMIT 1"
        ))
        .bind::<Text, _>(job)
        .load(&mut conn)
        .await?;
        rows.into_iter().next().map(JobRun::try_from).transpose()
    }

    /// How many dead runs `job` has.
    pub async fn dead_count(&self, job: &str) -> Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = get(&self.pool).await?;
        let count: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM job_runs WHERE job = $1 AND state = 'dead'",
        )
        .bind::<Text, _>(job)
        .get_result(&mut conn)
        .await?;
        Ok(count.n)
    }
}

fn not_found_is_none<T>(e: diesel::result::Error) -> Result<Option<T>> {
    match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e.into()),
    }
}
