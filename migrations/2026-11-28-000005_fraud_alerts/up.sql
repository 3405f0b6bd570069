-- Fraud alerts and their review (the seed's TransactionMonitoring model), with the alert
-- delivery outbox in the same row: an alert and its pending delivery are one INSERT, so
-- they commit together.
--
-- `user_id` is the seed's `user` (an external user id, not a key of `users`; `user` is a
-- reserved word). `reviewed` is derived from `state`, so the two can never disagree.
-- Timestamps keep microseconds.

CREATE TABLE transaction_monitoring (
    id                  UUID PRIMARY KEY,
    rule_id             TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    severity            TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    subject             TEXT NOT NULL,
    user_id             TEXT,
    description         TEXT NOT NULL,
    metadata            JSONB NOT NULL DEFAULT '{}',
    event_id            TEXT NOT NULL,
    event_ts            TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    state               TEXT NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    reviewed            BOOLEAN NOT NULL
                        GENERATED ALWAYS AS (state IN ('resolved', 'false_positive')) STORED,
    reviewed_by         TEXT,
    reviewed_at         TIMESTAMPTZ,
    -- [{"author": …, "text": …, "at": …}], oldest first, only ever appended to
    notes               JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(notes) = 'array'),
    -- delivery outbox: due when delivered_at IS NULL AND next_attempt_at <= now()
    delivered_at        TIMESTAMPTZ,
    delivery_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    next_attempt_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_delivery_error TEXT,
    -- sinks that accepted the alert, so a retry after a partial failure skips them
    delivered_sinks     TEXT[] NOT NULL DEFAULT '{}',
    CHECK ((state = 'open') = (reviewed_by IS NULL)),
    CHECK ((state = 'open') = (reviewed_at IS NULL))
);
CREATE INDEX transaction_monitoring_user_created ON transaction_monitoring (user_id, created_at);
CREATE INDEX transaction_monitoring_type_severity ON transaction_monitoring (event_type, severity);
CREATE INDEX transaction_monitoring_reviewed ON transaction_monitoring (reviewed);
-- list(): newest first, keyset on created_at
CREATE INDEX transaction_monitoring_created ON transaction_monitoring (created_at DESC, id DESC);
-- the worker's claim: only undelivered rows, by due time
CREATE INDEX transaction_monitoring_due ON transaction_monitoring (next_attempt_at, id)
    WHERE delivered_at IS NULL;
