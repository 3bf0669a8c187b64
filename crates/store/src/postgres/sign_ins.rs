//! Sign-ins: creation, the reads of a sign-in with what it needs (one statement each),
//! PIN evaluations, the decision (with the consent it remembers), code redemption, and
//! purging.

use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::accounts::{device_from, joined_account};
use super::clients::relying_party_from;
use super::row::{Fields, qualified};
use crate::columns::{ACCOUNT_COLUMNS, DEVICE_COLUMNS, LOGIN_COLUMNS, RP_COLUMNS};
use crate::records::{
    AccountRecord, CodeRedemption, Factor, LoginAndDevice, LoginOutcome, LoginRecord, NewLogin,
    RelyingParty, SignInRequest, claim_names,
};
use crate::records::{PinCount, PurgeCutoffs};
use crate::{SignInStore, StoreError};

/// A sign-in from [`LOGIN_COLUMNS`].
fn login_from(row: &Row) -> Result<LoginRecord, StoreError> {
    let f = Fields::new(row, "login_transactions", "");
    Ok(LoginRecord {
        id: f.get("id")?,
        request: SignInRequest {
            client_id: f.get("client_id")?,
            redirect_uri: f.get("redirect_uri")?,
            state: f.get("state")?,
            nonce: f.get("nonce")?,
            claims: f.claims("requested_claims")?,
            id_token_claims: f.claims("id_token_claims")?,
            level: f.text("required_level")?,
            code_challenge: f.get("code_challenge")?,
            force_consent: f.get("force_consent")?,
        },
        browser_digest: f.get("browser_digest")?,
        status: f.text("status")?,
        account_id: f.get("login_account_id")?,
        level: f.optional_text("level")?,
        claims: f.claims("claims")?,
        auth_time: f.get("auth_time")?,
        code_redeemed_at: f.get("code_redeemed_at")?,
        code_replayed_at: f.get("code_replayed_at")?,
        pin_evaluated: f.get("pin_evaluated")?,
        approval_digest: f.get("approval_digest")?,
        device_thumbprint: f.get("device_thumbprint")?,
        created_at: f.get("created_at")?,
        expires_at: f.get("expires_at")?,
    })
}

/// The sign-in of [`LOGIN_COLUMNS`] in an outer join: `None` when the join found none.
fn joined_login(row: &Row) -> Result<Option<LoginRecord>, StoreError> {
    let found: Option<&str> = Fields::new(row, "login_transactions", "").get("id")?;
    found.map(|_| login_from(row)).transpose()
}

/// A redeemed sign-in followed by its account's columns (NULL if none).
fn redeemed_with_account(row: &Row) -> Result<(LoginRecord, Option<AccountRecord>), StoreError> {
    Ok((login_from(row)?, joined_account(row)?))
}

// The approval statement, with room for one more data-modifying step before its result.
// Claim lists are `TEXT[]`: the merge appends the claims the row does not hold yet, in the
// order asked, with array operators.
macro_rules! approve_and_remember_consent {
    ($($more:literal)?) => {
        concat!("WITH approved AS (
       UPDATE login_transactions
       SET status = 'approved', account_id = $3, level = $4, claims = $5, auth_time = $6,
           device_thumbprint = $7
       WHERE id = $1 AND status = 'pending' AND expires_at > $2
         AND (device_thumbprint IS NULL OR device_thumbprint = $7)
       RETURNING client_id),
     remembered AS (
       INSERT INTO consents (account_id, client_id, claims, granted_at)
       SELECT $3, client_id, $5, $2 FROM approved
       ON CONFLICT (account_id, client_id) DO UPDATE
       SET claims = consents.claims || ARRAY(
             SELECT claim FROM unnest(excluded.claims) WITH ORDINALITY AS asked(claim, position)
             WHERE claim <> ALL (consents.claims) ORDER BY position),
           granted_at = excluded.granted_at
       WHERE NOT consents.claims @> excluded.claims
       RETURNING 1)", $($more,)? "
     SELECT count(*) AS approved FROM approved")
    };
}
/// Approves a pending sign-in and adds its released claims to the holder's remembered
/// consent for the client, in one statement. The consent row changes only when it is new
/// or the set grows (existing claims first, in their order, then the new ones); the
/// conflict clause locks the row, so concurrent approvals cannot lose a claim. Returns the
/// number of sign-ins approved (0 or 1).
const APPROVE_AND_REMEMBER_CONSENT: &str = approve_and_remember_consent!();
/// The same, and the failure counts of the factors proved start again from zero ($8: the
/// PIN, $9: the face), in the same statement (a count already at zero is not rewritten).
const APPROVE_REMEMBER_CONSENT_AND_RESET: &str = approve_and_remember_consent!(
    ",
     reset AS (
       UPDATE accounts
       SET pin_failures = CASE WHEN $8 THEN 0 ELSE pin_failures END,
           face_failures = CASE WHEN $9 THEN 0 ELSE face_failures END
       WHERE id = $3 AND EXISTS (SELECT 1 FROM approved)
         AND (($8 AND pin_failures <> 0) OR ($9 AND face_failures <> 0))
       RETURNING 1)"
);

fn approved_count(row: &Row) -> Result<u64, StoreError> {
    Fields::new(row, "login_transactions", "").unsigned::<i64, _>("approved")
}

#[async_trait]
impl SignInStore for PostgresStore {
    async fn insert_login(&self, login: &NewLogin) -> Result<bool, StoreError> {
        let request = &login.request;
        self.execute(
            "INSERT INTO login_transactions
               (id, client_id, redirect_uri, state, nonce, requested_claims, id_token_claims,
                required_level, code_challenge, force_consent, par_handle, browser_digest,
                status, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
             WHERE EXISTS (SELECT 1 FROM relying_parties WHERE client_id = $2 AND status = 'active')",
            &[
                &login.id,
                &request.client_id,
                &request.redirect_uri,
                &request.state,
                &request.nonce,
                &claim_names(&request.claims),
                &claim_names(&request.id_token_claims),
                &request.level.as_str(),
                &request.code_challenge,
                &request.force_consent,
                &login.par_handle,
                &login.browser_digest,
                &login.status.as_str(),
                &login.created_at,
                &login.expires_at,
            ],
        )
        .await
        .map(|inserted| inserted == 1)
    }

    async fn login(&self, id: &str) -> Result<Option<LoginRecord>, StoreError> {
        self.one(
            sql!("SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE id = $1"),
            &[&id],
            login_from,
        )
        .await
    }

    async fn login_with_client(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty)>, StoreError> {
        let sql = sql!(
            "SELECT {}, {RP_COLUMNS} FROM login_transactions l
                 JOIN relying_parties r ON r.client_id = l.client_id WHERE l.id = $1",
            qualified(LOGIN_COLUMNS, "l")
        );
        self.one(sql, &[&id], |row| {
            Ok((login_from(row)?, relying_party_from(row)?))
        })
        .await
    }

    async fn login_with_client_and_account(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty, Option<AccountRecord>)>, StoreError> {
        let sql = sql!(
            "SELECT {}, {RP_COLUMNS}, {ACCOUNT_COLUMNS} FROM login_transactions l
                 JOIN relying_parties r ON r.client_id = l.client_id
                 LEFT JOIN accounts a ON a.id = l.account_id
                 WHERE l.id = $1",
            qualified(LOGIN_COLUMNS, "l")
        );
        self.one(sql, &[&id], |row| {
            Ok((
                login_from(row)?,
                relying_party_from(row)?,
                joined_account(row)?,
            ))
        })
        .await
    }

    async fn login_and_device(
        &self,
        id: &str,
        thumbprint: &str,
    ) -> Result<LoginAndDevice, StoreError> {
        // Two independent point lookups in one statement: one row, each side NULL when
        // there is nothing.
        let sql = sql!(
            "SELECT {}, {ACCOUNT_COLUMNS}, {DEVICE_COLUMNS}
                 FROM (VALUES (1)) AS one (x)
                 LEFT JOIN login_transactions l ON l.id = $1
                 LEFT JOIN devices d ON d.thumbprint = $2 AND d.revoked_at IS NULL
                 LEFT JOIN accounts a ON a.id = d.account_id",
            qualified(LOGIN_COLUMNS, "l")
        );
        let found = self
            .one(sql, &[&id, &thumbprint], |row| {
                let device = match joined_account(row)? {
                    Some(account) => Some((account, device_from(row)?)),
                    None => None,
                };
                Ok((joined_login(row)?, device))
            })
            .await?;
        Ok(found.unwrap_or((None, None)))
    }

    async fn claim_pushed_login(
        &self,
        par_handle: &str,
        client_id: &str,
        browser_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<LoginRecord>, StoreError> {
        self.one(
            sql!(
                "UPDATE login_transactions SET status = 'pending', browser_digest = $3, expires_at = $5
                 WHERE par_handle = $1 AND client_id = $2 AND status = 'pushed' AND expires_at > $4
                   AND EXISTS (SELECT 1 FROM relying_parties r WHERE r.client_id = $2 AND r.status = 'active')
                 RETURNING {LOGIN_COLUMNS}"
            ),
            &[&par_handle, &client_id, &browser_digest, &now, &expires_at],
            login_from,
        )
        .await
    }

    async fn finish_login(
        &self,
        id: &str,
        device: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = match outcome {
            LoginOutcome::Approved {
                account_id,
                level,
                claims,
                auth_time,
                reset,
            } => {
                let claims = claim_names(claims);
                let level = level.as_str();
                let params: [&(dyn ToSql + Sync); 7] =
                    [&id, &now, account_id, &level, &claims, auth_time, &device];
                // One statement either way: atomic without a transaction, one round trip.
                let approved = if reset.is_empty() {
                    self.one(APPROVE_AND_REMEMBER_CONSENT, &params, approved_count)
                        .await?
                } else {
                    let (pin, face) = (reset.contains(&Factor::Pin), reset.contains(&Factor::Face));
                    let mut with_reset = params.to_vec();
                    with_reset.extend_from_slice(&[&pin, &face]);
                    self.one(
                        APPROVE_REMEMBER_CONSENT_AND_RESET,
                        &with_reset,
                        approved_count,
                    )
                    .await?
                };
                approved.unwrap_or(0)
            }
            LoginOutcome::Refused(refusal) => {
                self.execute(
                    "UPDATE login_transactions SET status = $3, device_thumbprint = $4
                     WHERE id = $1 AND status = 'pending' AND expires_at > $2
                       AND (device_thumbprint IS NULL OR device_thumbprint = $4)",
                    &[&id, &now, &refusal.status().as_str(), &device],
                )
                .await?
            }
        };
        Ok(changed == 1)
    }

    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError> {
        // The account comes back in the same round trip as the redemption.
        let redeemed = self
            .one(
                sql!(
                    "WITH redeemed AS (
                       UPDATE login_transactions SET code_redeemed_at = $2
                       WHERE id = $1 AND status = 'approved' AND code_redeemed_at IS NULL
                       RETURNING {LOGIN_COLUMNS})
                     SELECT redeemed.*, {ACCOUNT_COLUMNS}
                     FROM redeemed LEFT JOIN accounts a ON a.id = redeemed.login_account_id"
                ),
                &[&id, &now],
                redeemed_with_account,
            )
            .await?;
        if let Some((login, account)) = redeemed {
            return Ok(CodeRedemption::Redeemed {
                login: Box::new(login),
                account: account.map(Box::new),
            });
        }
        let used: Option<Option<i64>> = self
            .one(
                "SELECT code_redeemed_at FROM login_transactions WHERE id = $1 AND status = 'approved'",
                &[&id],
                |row| Fields::new(row, "login_transactions", "").get("code_redeemed_at"),
            )
            .await?;
        Ok(match used {
            Some(Some(_)) => CodeRedemption::AlreadyRedeemed,
            _ => CodeRedemption::NotApproved,
        })
    }

    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError> {
        self.one(
            sql!(
                "WITH redeemed AS (
                   UPDATE login_transactions SET code_redeemed_at = $5
                   WHERE id = $1 AND client_id = $2 AND status = 'approved'
                     AND code_redeemed_at IS NULL
                     AND redirect_uri = $3 AND code_challenge = $4
                     AND EXISTS (SELECT 1 FROM relying_parties r
                                 WHERE r.client_id = $2 AND r.status = 'active')
                   RETURNING {LOGIN_COLUMNS})
                 SELECT redeemed.*, {ACCOUNT_COLUMNS}
                 FROM redeemed LEFT JOIN accounts a ON a.id = redeemed.login_account_id"
            ),
            &[&id, &client_id, &redirect_uri, &code_challenge, &now],
            redeemed_with_account,
        )
        .await
    }

    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE login_transactions SET code_replayed_at = $2 WHERE id = $1 AND code_replayed_at IS NULL",
            &[&transaction_id, &now],
        )
        .await
        .map(|n| n == 1)
    }

    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        device: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<PinCount, StoreError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // One statement: atomic without a transaction, and one round trip on every L2
        // sign-in's PIN step. Nothing is counted for a sign-in another device took up; the
        // sign-in is taken up and marked only when the attempt was counted. (Two devices at
        // once: the second's update of the sign-in waits for the first's and then finds it
        // taken; only the second device's own account may have counted an attempt.)
        let counted = self
            .one(
                "WITH free AS (
                   SELECT NOT EXISTS (
                     SELECT 1 FROM login_transactions
                     WHERE id = $3 AND device_thumbprint <> $5) AS free),
                 counted AS (
                   UPDATE accounts SET pin_failures = pin_failures + 1
                   WHERE id = $1 AND pin_failures < $2 AND (SELECT free FROM free)
                   RETURNING pin_failures),
                 marked AS (
                   UPDATE login_transactions
                   SET pin_evaluated = TRUE, approval_digest = $4, device_thumbprint = $5
                   WHERE id = $3 AND status = 'pending' AND EXISTS (SELECT 1 FROM counted)
                     AND (device_thumbprint IS NULL OR device_thumbprint = $5)
                   RETURNING 1)
                 SELECT (SELECT pin_failures FROM counted) AS pin_failures,
                        (SELECT free FROM free) AS free",
                &[&account_id, &limit, &login_id, &approval_digest, &device],
                |row| {
                    let f = Fields::new(row, "accounts", "");
                    let free: bool = f.get("free")?;
                    let failures: Option<i32> = f.get("pin_failures")?;
                    Ok(match (free, failures) {
                        (false, _) => PinCount::TakenByAnotherDevice,
                        (true, None) => PinCount::Locked,
                        (true, Some(n)) => PinCount::Counted(
                            u32::try_from(n).map_err(|e| f.corrupt("pin_failures", e))?,
                        ),
                    })
                },
            )
            .await?;
        counted
            .ok_or_else(|| StoreError::Database("counting a PIN evaluation returned no row".into()))
    }

    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError> {
        // The ids travel as one array parameter, however many there are.
        self.rows(
            "SELECT id FROM login_transactions
             WHERE id = ANY($1) AND (status <> 'pending' OR expires_at <= $2)",
            &[&ids, &now],
        )
        .await?
        .iter()
        .map(|row| Fields::new(row, "login_transactions", "").get("id"))
        .collect()
    }

    async fn purge_expired_batch(
        &self,
        cutoffs: PurgeCutoffs,
        batch: u32,
    ) -> Result<(u64, u64), StoreError> {
        let batch = i64::from(batch);
        let assertions = self
            .execute(
                "DELETE FROM client_assertions WHERE (client_id, jti) IN (
                   SELECT client_id, jti FROM client_assertions WHERE expires_at < $1 LIMIT $2)",
                &[&cutoffs.now, &batch],
            )
            .await?;
        let sign_ins = self
            .execute(
                "DELETE FROM login_transactions WHERE id IN (
                   SELECT id FROM login_transactions WHERE expires_at < $1
                     AND (expires_at < $2 OR (status <> 'approved' AND expires_at < $3))
                   LIMIT $4)",
                &[
                    &cutoffs.latest(),
                    &cutoffs.approved_before,
                    &cutoffs.unfinished_before,
                    &batch,
                ],
            )
            .await?;
        Ok((assertions, sign_ins))
    }
}
