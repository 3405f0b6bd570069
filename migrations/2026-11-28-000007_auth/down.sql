DROP TABLE auth_user_not_before;
DROP TABLE auth_denied_tokens;
DROP TABLE auth_refresh_tokens;
DROP TABLE auth_sessions;
