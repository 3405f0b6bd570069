-- Webhooks: the Postgres idempotency and replay stores (the fallback when Redis is
-- unreachable) and the outbound delivery outbox the worker drains.

-- One row per idempotency key within its scope. A row counts while expires_at is in the
-- future: for an in-flight claim that is the lock expiry, for a completed one the retention.
-- An expired row is as good as absent: the next claim takes it over in place.
CREATE TABLE idempotency_keys (
    -- The scope as a JSON array ["principal", "METHOD", "/path"]: unambiguous and readable.
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL CHECK (key ~ '^[A-Za-z0-9_-]{8,64}$'),
    -- SHA-256 of the request body.
    fingerprint    BYTEA NOT NULL CHECK (octet_length(fingerprint) = 32),
    state          TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lock_token     TEXT,
    locked_until   TIMESTAMPTZ,
    status         SMALLINT,
    header_names   TEXT[],
    header_values  BYTEA[],
    body           BYTEA,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK ((state = 'in_flight') = (lock_token IS NOT NULL AND locked_until IS NOT NULL)),
    CHECK (state = 'in_flight' OR (status IS NOT NULL AND body IS NOT NULL
        AND header_names IS NOT NULL AND header_values IS NOT NULL
        AND cardinality(header_names) = cardinality(header_values)))
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);

-- Accepted inbound webhook ids with the SHA-256 of their body, for the tolerance window.
CREATE TABLE webhook_replay (
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    body_hash  BYTEA NOT NULL CHECK (octet_length(body_hash) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX webhook_replay_expires_idx ON webhook_replay (expires_at);

-- Where outbound webhooks go. Which addresses may be called is configuration (the
-- worker's allow-list), checked on every connection, not stored here.
CREATE TABLE webhook_endpoints (
    id            UUID PRIMARY KEY,
    url           TEXT NOT NULL CHECK (url ~ '^https?://'),
    description   TEXT NOT NULL DEFAULT '',
    enabled       BOOLEAN NOT NULL DEFAULT true,
    disabled_at   TIMESTAMPTZ,
    -- Start of the current run of failed attempts; NULL after a success.
    failing_since TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_at IS NULL))
);

-- Signing secrets (`whsec_…`) of an endpoint. During a rotation the old secret gets an
-- expiry and both sign; once expired it is ignored.
CREATE TABLE webhook_endpoint_secrets (
    id          BIGSERIAL PRIMARY KEY,
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL CHECK (secret LIKE 'whsec\_%'),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ
);
CREATE INDEX webhook_endpoint_secrets_endpoint_idx ON webhook_endpoint_secrets (endpoint_id);

-- One outbound message for one endpoint, written in the transaction of the business change
-- that causes it. The payload is kept as the exact bytes that are signed and sent.
CREATE TABLE webhook_messages (
    id          TEXT PRIMARY KEY CHECK (id ~ '^msg_[A-Za-z0-9]+$'),
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL CHECK (event_type <> ''),
    payload     BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, created_at);

-- One row per attempt. The message's latest row is its state: 'pending' (due at
-- next_attempt_at; while a worker holds it, next_attempt_at is the lease expiry and
-- lease_token names the holder), 'delivered', 'failed' (a later attempt row follows) or
-- 'dead' (the last attempt failed; an operator may replay it, which adds a pending row).
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL CHECK (attempt >= 1),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_token     UUID,
    claims          INTEGER NOT NULL DEFAULT 0 CHECK (claims >= 0),
    response_status SMALLINT,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempted_at    TIMESTAMPTZ,
    UNIQUE (message_id, attempt),
    CHECK ((status = 'pending') = (attempted_at IS NULL))
);
-- At most one attempt of a message waits at a time.
CREATE UNIQUE INDEX webhook_deliveries_one_pending_idx ON webhook_deliveries (message_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_dead_idx ON webhook_deliveries (created_at)
    WHERE status = 'dead';
