DROP INDEX IF EXISTS withdrawals_vault_request_idx;
ALTER TABLE withdrawals DROP COLUMN IF EXISTS vault_request_id;
