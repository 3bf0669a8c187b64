-- The services of a sector see the same subject for a holder; the login page and the wallet
-- name them, read by sector.
CREATE INDEX relying_parties_by_sector ON relying_parties (sector);
