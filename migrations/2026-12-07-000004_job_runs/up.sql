-- The worker's record of its job runs: one row per scheduled occurrence (its claim: the
-- unique (job, occurrence) lets exactly one replica run it), and one per dispatcher pulse
-- that failed all its attempts (a dead letter). Successful dispatcher pulses leave no row.
--
-- state: 'running' (claimed by `owner` until `lease_until`), 'succeeded', 'dead' (every
-- attempt failed; `haven-admin jobs retry` turns it into 'queued'), 'queued' (waiting for
-- any replica to claim it again: a retry, or a run returned at shutdown or after its
-- owner's lease ran out).
CREATE TABLE job_runs (
    id          BIGSERIAL PRIMARY KEY,
    job         TEXT NOT NULL,
    occurrence  TIMESTAMPTZ NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'dead', 'queued')),
    owner       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error  TEXT,
    lease_until TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    UNIQUE (job, occurrence),
    CHECK ((state = 'running') = (owner IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX job_runs_open ON job_runs (state, lease_until) WHERE state IN ('running', 'queued');
CREATE INDEX job_runs_dead ON job_runs (job, id) WHERE state = 'dead';
CREATE INDEX job_runs_latest ON job_runs (job, occurrence DESC);
