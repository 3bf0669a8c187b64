-- The embedded copy of the (simulated) population registry. In production the registry
-- is an external system behind the Registry trait.
CREATE TABLE registry_people (
    id_number  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    sex        TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    face       BLOB NOT NULL
) WITHOUT ROWID;

-- One row per person, for life: the row (and so the network number) stays after
-- deregistration, with the data key destroyed.
CREATE TABLE accounts (
    id                INTEGER PRIMARY KEY,
    person_digest     BLOB NOT NULL UNIQUE,
    network_number    TEXT NOT NULL UNIQUE,
    status            TEXT NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'suspended', 'deregistered')),
    wrapped_data_key  BLOB,
    sealed_attributes BLOB,
    pin_key_id        BLOB NOT NULL UNIQUE,
    pin_verifier      TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);

CREATE TABLE devices (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    thumbprint  TEXT NOT NULL UNIQUE,
    public_jwk  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX devices_by_account ON devices (account_id);

-- One row per issued credential; the key is its index in the status lists.
CREATE TABLE credentials (
    status_index INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    device_id    INTEGER NOT NULL REFERENCES devices (id),
    status       INTEGER NOT NULL DEFAULT 0,
    issued_at    INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX credentials_by_account ON credentials (account_id);
-- Building a status list reads only the non-valid entries of one range.
CREATE INDEX credentials_not_valid ON credentials (status_index) WHERE status <> 0;
