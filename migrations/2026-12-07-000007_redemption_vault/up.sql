-- A redemption a guardian vault covers waits for the vault: the vault request that decides
-- it. The redemption is approved only by the release of exactly this request.
ALTER TABLE redemption_requests ADD COLUMN vault_request_id UUID;
CREATE UNIQUE INDEX redemption_requests_vault_request_idx
    ON redemption_requests (vault_request_id) WHERE vault_request_id IS NOT NULL;
