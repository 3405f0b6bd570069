DROP TABLE IF EXISTS vault_threshold_keys;
