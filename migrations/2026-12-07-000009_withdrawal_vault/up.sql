-- A withdrawal a guardian vault covers is held until the vault request recorded here is
-- released (then it moves) or rejected or expired (then it never moves).
ALTER TABLE withdrawals ADD COLUMN vault_request_id UUID;
CREATE UNIQUE INDEX withdrawals_vault_request_idx
    ON withdrawals (vault_request_id) WHERE vault_request_id IS NOT NULL;
