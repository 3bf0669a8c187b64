-- Relying parties, as the operator registered them.
CREATE TABLE relying_parties (
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    redirect_uris  TEXT NOT NULL,          -- JSON array, matched exactly
    sector         TEXT NOT NULL,          -- pairwise subjects are per sector
    allowed_claims TEXT NOT NULL,          -- JSON array of claim names
    legal_basis    TEXT,
    auth_method    TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'private_key_jwt')),
    secret_digest  BLOB,
    jwks           TEXT,
    require_par    INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- A sign-in in progress: from /authorize (or PAR) to the code exchange.
CREATE TABLE login_transactions (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES relying_parties (client_id),
    request          TEXT NOT NULL,       -- the validated authorization request, JSON
    par_handle       TEXT UNIQUE,
    browser_digest   BLOB,
    status           TEXT NOT NULL CHECK (status IN ('pushed', 'pending', 'approved', 'declined', 'failed')),
    error            TEXT,
    account_id       INTEGER REFERENCES accounts (id),
    level            TEXT,
    claims           TEXT,                -- JSON array of released claims
    auth_time        INTEGER,
    code_redeemed_at INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_transactions_by_expiry ON login_transactions (expires_at);

CREATE TABLE access_tokens (
    token_digest   BLOB PRIMARY KEY,
    transaction_id TEXT NOT NULL,
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    client_id      TEXT NOT NULL,
    claims         TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX access_tokens_by_transaction ON access_tokens (transaction_id);

-- What each holder agreed to release to each relying party.
CREATE TABLE consents (
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    client_id  TEXT NOT NULL,
    claims     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_id)
) WITHOUT ROWID;

-- Failed-factor counters live in the store so that every node sees them.
ALTER TABLE accounts ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN face_failures INTEGER NOT NULL DEFAULT 0;
