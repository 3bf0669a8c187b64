-- Access tokens are MAC-authenticated and checked against their sign-in (revocation after a
-- code replay is the sign-in's code_replayed_at), so they are no longer stored.
DROP TABLE access_tokens;
