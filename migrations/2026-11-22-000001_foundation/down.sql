DROP TABLE error_logs;
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP TABLE audit_log;
DROP FUNCTION audit_log_refuse_change();
DROP TABLE api_keys;
DROP TABLE users;
