-- The counters behind the rate limits, shared by every node: one row per limit, counted
-- thing (a keyed digest, never the address or number itself) and window.
CREATE TABLE rate_counters (
    counter      BYTEA NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (counter, window_start)
) ;
CREATE INDEX rate_counters_by_expiry ON rate_counters (expires_at);
