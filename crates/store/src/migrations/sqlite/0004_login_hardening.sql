-- A replayed code marks its sign-in, so tokens issued with it count as revoked even if they
-- were stored after the replay was seen.
ALTER TABLE login_transactions ADD COLUMN code_replayed_at INTEGER;
-- An L2 approval needs a PIN evaluation counted for this very sign-in.
ALTER TABLE login_transactions ADD COLUMN pin_evaluated INTEGER NOT NULL DEFAULT 0;

-- Client assertions (private_key_jwt) are single-use: their jti until they expire.
CREATE TABLE client_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) WITHOUT ROWID;
CREATE INDEX client_assertions_by_expiry ON client_assertions (expires_at);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id, client_id);
