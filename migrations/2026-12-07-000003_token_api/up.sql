-- The token API: redemptions for fiat with approval, withdrawals to external addresses, and
-- the chain movements the worker makes for them.

-- A member redeems tokens for fiat: the tokens go to escrow (the operator wallet) at once,
-- an operator approves (two distinct operators above the configured amount) or rejects
-- (the tokens come back), and marks it paid once the fiat left (the escrow is burned).
CREATE TABLE redemption_requests (
    id                  UUID PRIMARY KEY,
    member_id           UUID NOT NULL REFERENCES members (id),
    amount              NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    fiat_currency       TEXT NOT NULL,
    -- The quote the request was priced with: fiat per HNV, exact decimal text.
    rate                TEXT NOT NULL,
    fiat_amount         TEXT NOT NULL,
    rate_source         TEXT NOT NULL,
    rate_at             TIMESTAMPTZ NOT NULL,
    payout_reference    TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'paid', 'rejected')),
    -- Who asked (`user:<id>` or `api_key:<id>`), and who approved, in order.
    requested_by        TEXT NOT NULL,
    approvals           TEXT[] NOT NULL DEFAULT '{}',
    required_approvals  INT NOT NULL CHECK (required_approvals BETWEEN 1 AND 2),
    decided_by          TEXT,
    reason              TEXT,
    -- The idempotency key it was created under: one request per (member, key).
    idempotency_key     TEXT NOT NULL,
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (member_id, idempotency_key)
);
CREATE INDEX redemption_requests_status_idx ON redemption_requests (status, created_at);

-- A member moves tokens to one of their registered payout addresses.
CREATE TABLE withdrawals (
    id               UUID PRIMARY KEY,
    member_id        UUID NOT NULL REFERENCES members (id),
    chain            TEXT NOT NULL,
    address          TEXT NOT NULL,
    amount           NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'held', 'submitted', 'confirmed',
                                                     'rejected', 'failed')),
    -- The fraud alert holding it (status 'held') or that held it.
    alert_id         UUID,
    requested_by     TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    error            TEXT,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (member_id, idempotency_key)
);
CREATE INDEX withdrawals_alert_idx ON withdrawals (alert_id) WHERE alert_id IS NOT NULL;

-- The chain movements of redemptions and withdrawals, each once: a deterministic tx_id per
-- (subject, action). The worker drives them like reward jobs.
CREATE TABLE token_movements (
    id            BIGSERIAL PRIMARY KEY,
    subject       TEXT NOT NULL CHECK (subject IN ('redemption', 'withdrawal')),
    subject_id    UUID NOT NULL,
    -- escrow: member → operator wallet; return: operator → member; burn: the escrow is
    -- destroyed (paid); withdraw: member → external address.
    action        TEXT NOT NULL CHECK (action IN ('escrow', 'return', 'burn', 'withdraw')),
    member_id     UUID NOT NULL REFERENCES members (id),
    amount        NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    recipient     TEXT,
    tx_id         TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'submitted', 'confirmed', 'failed', 'cancelled')),
    error         TEXT,
    due_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until  TIMESTAMPTZ,
    attempts      INT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (subject_id, action)
);
CREATE INDEX token_movements_due_idx ON token_movements (due_at)
    WHERE state IN ('pending', 'submitted');
