-- The authorization request a sign-in was started with becomes columns of its own instead
-- of the platform's JSON: the code exchange compares redirect_uri and code_challenge as
-- columns, and the store never reads inside a JSON value, so a field renamed in the
-- platform cannot silently stop matching. Claim lists become TEXT[] (the approval merges a
-- holder's consent with array operators, in its one statement). The error column goes: a
-- refused sign-in's status says what the service hears. Sign-ins in flight are converted
-- from their stored request, the one time anything reads it.
ALTER TABLE login_transactions
    ADD COLUMN redirect_uri     TEXT,
    ADD COLUMN state            TEXT,
    ADD COLUMN nonce            TEXT,
    ADD COLUMN requested_claims TEXT[],
    ADD COLUMN id_token_claims  TEXT[],
    ADD COLUMN required_level   TEXT,
    ADD COLUMN code_challenge   TEXT,
    ADD COLUMN force_consent    BOOLEAN,
    ADD COLUMN released_claims  TEXT[];

-- Each stored request is parsed once (a day of sign-ins may be a large table). JSON the
-- platform never wrote fails the migration, on both backends.
UPDATE login_transactions SET
    redirect_uri = parsed.r ->> 'redirect_uri',
    state = parsed.r ->> 'state',
    nonce = parsed.r ->> 'nonce',
    requested_claims = ARRAY(
        SELECT claim FROM jsonb_array_elements_text(parsed.r -> 'claims')
               WITH ORDINALITY AS listed(claim, position) ORDER BY position),
    id_token_claims = ARRAY(
        SELECT claim FROM jsonb_array_elements_text(parsed.r -> 'id_token_claims')
               WITH ORDINALITY AS listed(claim, position) ORDER BY position),
    required_level = parsed.r ->> 'level',
    code_challenge = parsed.r ->> 'code_challenge',
    force_consent = COALESCE((parsed.r ->> 'force_consent')::boolean, FALSE),
    released_claims = ARRAY(
        SELECT claim FROM jsonb_array_elements_text(login_transactions.claims::jsonb)
               WITH ORDINALITY AS listed(claim, position) ORDER BY position)
FROM (SELECT id, request::jsonb AS r FROM login_transactions) AS parsed
WHERE login_transactions.id = parsed.id;

-- A request without these never came from the platform, and its sign-in could not end.
DELETE FROM login_transactions
WHERE redirect_uri IS NULL OR code_challenge IS NULL OR required_level IS NULL;

ALTER TABLE login_transactions DROP COLUMN request, DROP COLUMN error, DROP COLUMN claims;
ALTER TABLE login_transactions RENAME COLUMN released_claims TO claims;
ALTER TABLE login_transactions
    ALTER COLUMN redirect_uri SET NOT NULL,
    ALTER COLUMN requested_claims SET NOT NULL,
    ALTER COLUMN id_token_claims SET NOT NULL,
    ALTER COLUMN required_level SET NOT NULL,
    ALTER COLUMN code_challenge SET NOT NULL,
    ALTER COLUMN force_consent SET NOT NULL,
    ALTER COLUMN claims SET DEFAULT '{}',
    ALTER COLUMN claims SET NOT NULL;

-- What each holder agreed to release, as TEXT[] too.
ALTER TABLE consents ADD COLUMN claim_list TEXT[];
UPDATE consents SET claim_list = ARRAY(
    SELECT claim FROM jsonb_array_elements_text(claims::jsonb)
           WITH ORDINALITY AS listed(claim, position) ORDER BY position);
ALTER TABLE consents DROP COLUMN claims;
ALTER TABLE consents RENAME COLUMN claim_list TO claims;
ALTER TABLE consents ALTER COLUMN claims SET NOT NULL;
