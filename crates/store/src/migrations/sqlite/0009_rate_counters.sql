-- The counters behind the rate limits, shared by every node: one row per limit, counted
-- thing (a keyed digest, never the address or number itself) and window.
CREATE TABLE rate_counters (
    counter      BLOB NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (counter, window_start)
) WITHOUT ROWID;
CREATE INDEX rate_counters_by_expiry ON rate_counters (expires_at);
