-- The authorization request a sign-in was started with becomes columns of its own instead
-- of the platform's JSON: the code exchange compares redirect_uri and code_challenge as
-- columns, and the store never reads inside a JSON value, so a field renamed in the
-- platform cannot silently stop matching. Claim lists stay JSON arrays of claim names,
-- read and written whole. The error column goes: a refused sign-in's status says what the
-- service hears.
--
-- SQLite adds no NOT NULL column without a default, so the table is rebuilt; sign-ins in
-- flight are converted from their stored request, the one time anything reads it.
CREATE TABLE login_transactions_0007 (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES relying_parties (client_id),
    redirect_uri     TEXT NOT NULL,
    state            TEXT,
    nonce            TEXT,
    requested_claims TEXT NOT NULL,       -- JSON array of claim names
    id_token_claims  TEXT NOT NULL,       -- JSON array of claim names
    required_level   TEXT NOT NULL,       -- L1, L2, L3
    code_challenge   TEXT NOT NULL,
    force_consent    INTEGER NOT NULL,
    par_handle       TEXT UNIQUE,
    browser_digest   BLOB,
    status           TEXT NOT NULL CHECK (status IN ('pushed', 'pending', 'approved', 'declined', 'failed')),
    account_id       INTEGER REFERENCES accounts (id),
    level            TEXT,                -- the level approved
    claims           TEXT NOT NULL DEFAULT '[]', -- JSON array of the claims released
    auth_time        INTEGER,
    code_redeemed_at INTEGER,
    code_replayed_at INTEGER,
    pin_evaluated    INTEGER NOT NULL DEFAULT 0,
    approval_digest  BLOB,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO login_transactions_0007 (
    id, client_id, redirect_uri, state, nonce, requested_claims, id_token_claims,
    required_level, code_challenge, force_consent, par_handle, browser_digest, status,
    account_id, level, claims, auth_time, code_redeemed_at, code_replayed_at, pin_evaluated,
    approval_digest, created_at, expires_at)
SELECT id, client_id,
       json_extract(request, '$.redirect_uri'),
       json_extract(request, '$.state'),
       json_extract(request, '$.nonce'),
       COALESCE(json_extract(request, '$.claims'), '[]'),
       COALESCE(json_extract(request, '$.id_token_claims'), '[]'),
       json_extract(request, '$.level'),
       json_extract(request, '$.code_challenge'),
       COALESCE(json_extract(request, '$.force_consent'), 0),
       par_handle, browser_digest, status, account_id, level, COALESCE(claims, '[]'),
       auth_time, code_redeemed_at, code_replayed_at, pin_evaluated, approval_digest,
       created_at, expires_at
FROM login_transactions
-- A request without these never came from the platform, and its sign-in could not end.
-- JSON the platform never wrote fails the migration, as on PostgreSQL.
WHERE json_extract(request, '$.redirect_uri') IS NOT NULL
  AND json_extract(request, '$.code_challenge') IS NOT NULL
  AND json_extract(request, '$.level') IS NOT NULL;

DROP TABLE login_transactions;
ALTER TABLE login_transactions_0007 RENAME TO login_transactions;
CREATE INDEX login_transactions_by_expiry ON login_transactions (expires_at);
