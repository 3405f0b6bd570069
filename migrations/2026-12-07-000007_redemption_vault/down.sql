DROP INDEX IF EXISTS redemption_requests_vault_request_idx;
ALTER TABLE redemption_requests DROP COLUMN IF EXISTS vault_request_id;
