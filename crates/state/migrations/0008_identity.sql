-- Identity hardening: refresh-token families (presenting a rotated-away token again
-- revokes its whole family), revoked sessions (their access tokens stop at once), and
-- failed logins per user name (lock-out).
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE revoked_sessions (
    family_id   TEXT PRIMARY KEY,
    revoked_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);

CREATE TABLE login_failures (
    user_name        TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    window_start_ms  BIGINT NOT NULL,
    locked_until_ms  BIGINT
);
