-- Platform-wide facts every node must agree on, such as the fingerprint of the platform keys.
CREATE TABLE platform_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
