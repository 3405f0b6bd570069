-- The durable inbox of verified inbound webhooks. The unique (source, message_id) is the
-- replay store: an event is acknowledged only once its row is committed.
CREATE TABLE inbound_webhooks (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    body_sha256  BYTEA NOT NULL CHECK (octet_length(body_sha256) = 32),
    body         BYTEA NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ NULL,
    UNIQUE (source, message_id)
);

CREATE INDEX inbound_webhooks_unprocessed ON inbound_webhooks (received_at)
    WHERE processed_at IS NULL;
