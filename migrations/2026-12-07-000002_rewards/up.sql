-- The HAVEN rewards program: members, the partner events they earn from, the reward ledger
-- and the work the worker owes it (an outbox written in the event's transaction).

-- Members of the rewards program (not operator `users`).
CREATE TABLE members (
    id              UUID PRIMARY KEY,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- A verified e-mail (lower-cased): partner identities with the same one are linked.
    email           TEXT,
    -- The custodial wallet, created the first time a reward is minted.
    wallet_id       TEXT,
    wallet_address  BYTEA CHECK (wallet_address IS NULL OR octet_length(wallet_address) = 20),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((wallet_id IS NULL) = (wallet_address IS NULL))
);
CREATE UNIQUE INDEX members_email_key ON members (email) WHERE email IS NOT NULL;

-- How a partner knows a member. One member may be known to Aurora and to Tribe.
CREATE TABLE member_identities (
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    member_id    UUID NOT NULL REFERENCES members (id),
    -- 'first_event', 'verified_email' or 'operator'.
    linked_by    TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, external_id)
);
CREATE INDEX member_identities_member_idx ON member_identities (member_id);

-- External addresses a member registered for payouts, normalized by haven-address.
CREATE TABLE member_payout_addresses (
    member_id   UUID NOT NULL REFERENCES members (id),
    chain       TEXT NOT NULL,
    address     TEXT NOT NULL,
    label       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, chain, address)
);

-- Every partner event that was accepted (webhook or sync), with the decision that priced it.
CREATE TABLE partner_events (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT NOT NULL,
    event        TEXT NOT NULL,
    -- Where it came from: 'webhook:<message id>' or 'sync:<item id>'.
    origin       TEXT NOT NULL,
    member_id    UUID NOT NULL REFERENCES members (id),
    payload      BYTEA NOT NULL,
    decision     JSONB NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (source, origin)
);

-- Bookings cancelled, so that a reward arriving after its cancellation is never minted.
CREATE TABLE booking_cancellations (
    source        TEXT NOT NULL,
    booking_id    TEXT NOT NULL,
    event_id      BIGINT NOT NULL REFERENCES partner_events (id),
    cancelled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, booking_id)
);

-- The reward ledger: one row per business key (source, kind, external id[, member]).
-- Amounts are base units (10^-18 HNV).
CREATE TABLE rewards (
    id               UUID PRIMARY KEY,
    business_key     TEXT NOT NULL UNIQUE,
    source           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    external_id      TEXT NOT NULL,
    member_id        UUID NOT NULL REFERENCES members (id),
    amount           NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    rules_version    TEXT NOT NULL,
    reason           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'held', 'submitted', 'confirmed',
                                                    'reversed', 'cancelled', 'failed_needs_review')),
    -- The mint's transaction id, derived from the business key: at most one mint ever.
    tx_id            TEXT NOT NULL UNIQUE,
    event_id         BIGINT REFERENCES partner_events (id),
    -- The fraud alert holding it (state 'held') or that held it.
    alert_id         UUID,
    -- Reversal of a minted reward: the burn's id, what it burns and what could not be burned.
    reversal_tx_id   TEXT UNIQUE,
    reversed_amount  NUMERIC(78, 0) CHECK (reversed_amount IS NULL OR reversed_amount >= 0),
    shortfall        NUMERIC(78, 0) CHECK (shortfall IS NULL OR shortfall >= 0),
    error            TEXT,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirmed_at     TIMESTAMPTZ
);
CREATE INDEX rewards_member_idx ON rewards (member_id, created_at DESC, id DESC);
CREATE INDEX rewards_booking_idx ON rewards (source, external_id) WHERE kind IN ('booking', 'review');
CREATE INDEX rewards_alert_idx ON rewards (alert_id) WHERE alert_id IS NOT NULL;

-- What the worker owes the ledger: mint a reward, reverse one. Written in the same
-- transaction as the change that causes it; claimed with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE reward_jobs (
    id            BIGSERIAL PRIMARY KEY,
    reward_id     UUID NOT NULL REFERENCES rewards (id),
    action        TEXT NOT NULL CHECK (action IN ('mint', 'reverse')),
    due_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until  TIMESTAMPTZ,
    attempts      INT NOT NULL DEFAULT 0,
    last_error    TEXT,
    done_at       TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (reward_id, action)
);
CREATE INDEX reward_jobs_due_idx ON reward_jobs (due_at) WHERE done_at IS NULL;

-- Stakes recorded from Tribe's staking-started (accrual belongs to the staking job).
CREATE TABLE stakes (
    id          UUID PRIMARY KEY,
    source      TEXT NOT NULL,
    stake_id    TEXT NOT NULL,
    member_id   UUID NOT NULL REFERENCES members (id),
    amount      NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    started_at  TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ,
    event_id    BIGINT REFERENCES partner_events (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (source, stake_id)
);

-- Outbound webhook subscriptions: the event types (e.g. 'reward.confirmed') an endpoint
-- receives from the business events that name one.
ALTER TABLE webhook_endpoints ADD COLUMN event_types TEXT[] NOT NULL DEFAULT '{}';

-- API keys that act for one member only (a partner app showing a member their tokens).
ALTER TABLE api_keys ADD COLUMN member_id UUID REFERENCES members (id);
