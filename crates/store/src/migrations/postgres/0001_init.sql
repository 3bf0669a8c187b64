-- The embedded copy of the (simulated) population registry. In production the registry
-- is an external system behind the Registry trait.
CREATE TABLE registry_people (
    id_number  TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    birth_date DATE NOT NULL,
    sex        TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    face       BYTEA NOT NULL
);

-- One row per person, for life: the row (and so the network number) stays after
-- deregistration, with the data key destroyed.
CREATE TABLE accounts (
    id                BIGSERIAL PRIMARY KEY,
    person_digest     BYTEA NOT NULL,
    network_number    TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'suspended', 'deregistered')),
    wrapped_data_key  BYTEA,
    sealed_attributes BYTEA,
    pin_key_id        BYTEA NOT NULL,
    pin_verifier      TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    CONSTRAINT accounts_person_digest_key UNIQUE (person_digest),
    CONSTRAINT accounts_network_number_key UNIQUE (network_number),
    CONSTRAINT accounts_pin_key_id_key UNIQUE (pin_key_id)
);

CREATE TABLE devices (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts (id),
    thumbprint  TEXT NOT NULL,
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    CONSTRAINT devices_thumbprint_key UNIQUE (thumbprint)
);
CREATE INDEX devices_by_account ON devices (account_id);

-- One row per issued credential; the key is its index in the status lists.
CREATE TABLE credentials (
    status_index BIGSERIAL PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts (id),
    device_id    BIGINT NOT NULL REFERENCES devices (id),
    status       SMALLINT NOT NULL DEFAULT 0,
    issued_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX credentials_by_account ON credentials (account_id);
-- Building a status list reads only the non-valid entries of one range.
CREATE INDEX credentials_not_valid ON credentials (status_index) WHERE status <> 0;
