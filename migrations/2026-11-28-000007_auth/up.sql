-- Authentication state: refresh-token families (sessions), the refresh tokens of each family
-- by jti, the access-token deny-list and the per-user not-before of "log out everywhere".
-- user_id carries no foreign key: the session store is the auth crate's SessionStore and
-- also serves principals the users table does not hold (and its conformance suite).

-- One row per login: a refresh-token family.
CREATE TABLE auth_sessions (
    family_id      UUID PRIMARY KEY,
    user_id        UUID NOT NULL,
    device         TEXT NOT NULL,
    ip             TEXT,
    user_agent     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    last_active_at TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoke_reason  TEXT CHECK (revoke_reason IN
        ('logout', 'evicted', 'reuse_detected', 'logout_everywhere', 'expired')),
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id, created_at);

-- Every refresh token ever handed out, by jti. Exactly one per family is 'current'; a
-- rotation turns it 'rotated' (a compare-and-set on state) and inserts the next one.
-- Presenting a 'rotated' jti is reuse: the family is revoked.
CREATE TABLE auth_refresh_tokens (
    jti         UUID PRIMARY KEY,
    family_id   UUID NOT NULL REFERENCES auth_sessions (family_id) ON DELETE CASCADE,
    state       TEXT NOT NULL CHECK (state IN ('current', 'rotated')),
    issued_at   TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ,
    replaced_by UUID,
    CHECK ((state = 'rotated') = (rotated_at IS NOT NULL))
);
CREATE UNIQUE INDEX auth_refresh_tokens_one_current_idx
    ON auth_refresh_tokens (family_id) WHERE state = 'current';

-- Logged-out access tokens, refused until their own expiry; expired rows are pruned.
CREATE TABLE auth_denied_tokens (
    jti        UUID PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_denied_tokens_expires_idx ON auth_denied_tokens (expires_at);

-- "Log out everywhere": access tokens of the user issued in or before this second are refused.
CREATE TABLE auth_user_not_before (
    user_id    UUID PRIMARY KEY,
    not_before TIMESTAMPTZ NOT NULL
);
