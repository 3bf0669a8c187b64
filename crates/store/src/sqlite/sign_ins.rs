//! Sign-ins: creation, the reads of a sign-in with what it needs, PIN evaluations, the
//! decision (with the consent it remembers), code redemption, and purging.

use async_trait::async_trait;
use rusqlite::{Connection, Row, params};

use super::accounts::{read_account, read_device, reset_factor};
use super::clients::read_relying_party;
use super::consents::remember_consent;
use super::engine::{in_read_transaction, in_savepoint};
use super::row::{Fields, execute, query_one};
use super::{SqliteStore, db_error};
use crate::columns::LOGIN_COLUMNS;
use crate::records::{
    AccountRecord, CodeRedemption, LoginAndDevice, LoginOutcome, LoginRecord, NewLogin,
    RelyingParty, SignInRequest, claims_json,
};
use crate::records::{PinCount, PurgeCutoffs};
use crate::{SignInStore, StoreError};

/// A sign-in from [`LOGIN_COLUMNS`].
fn login_from(row: &Row<'_>) -> Result<LoginRecord, StoreError> {
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

fn read_login(conn: &Connection, id: &str) -> Result<Option<LoginRecord>, StoreError> {
    query_one(
        conn,
        sql!("SELECT {LOGIN_COLUMNS} FROM login_transactions WHERE id = ?1"),
        [id],
        db_error,
        login_from,
    )
}

/// A redeemed sign-in with its account as it stands.
fn with_account(
    conn: &Connection,
    login: LoginRecord,
) -> Result<(LoginRecord, Option<AccountRecord>), StoreError> {
    let account = match login.account_id {
        Some(account_id) => read_account(conn, account_id)?,
        None => None,
    };
    Ok((login, account))
}

#[async_trait]
impl SignInStore for SqliteStore {
    async fn insert_login(&self, login: &NewLogin) -> Result<bool, StoreError> {
        let login = login.clone();
        // Encoded here, not on the writer thread every commit waits for.
        let requested_claims = claims_json(&login.request.claims);
        let id_token_claims = claims_json(&login.request.id_token_claims);
        self.write(move |conn| {
            let request = &login.request;
            execute(
                conn,
                "INSERT INTO login_transactions
                   (id, client_id, redirect_uri, state, nonce, requested_claims, id_token_claims,
                    required_level, code_challenge, force_consent, par_handle, browser_digest,
                    status, created_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
                 WHERE EXISTS (SELECT 1 FROM relying_parties WHERE client_id = ?2 AND status = 'active')",
                params![
                    login.id,
                    request.client_id,
                    request.redirect_uri,
                    request.state,
                    request.nonce,
                    requested_claims,
                    id_token_claims,
                    request.level.as_str(),
                    request.code_challenge,
                    request.force_consent,
                    login.par_handle,
                    login.browser_digest,
                    login.status.as_str(),
                    login.created_at,
                    login.expires_at,
                ],
            )
            .map(|inserted| inserted == 1)
        })
        .await
    }

    async fn login(&self, id: &str) -> Result<Option<LoginRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| read_login(conn, &id)).await
    }

    async fn login_with_client(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty)>, StoreError> {
        // Two point reads in one read transaction (one snapshot, one WAL read lock).
        let id = id.to_owned();
        self.read_together(move |conn| {
            let Some(login) = read_login(conn, &id)? else {
                return Ok(None);
            };
            Ok(read_relying_party(conn, &login.request.client_id)?.map(|rp| (login, rp)))
        })
        .await
    }

    async fn login_with_client_and_account(
        &self,
        id: &str,
    ) -> Result<Option<(LoginRecord, RelyingParty, Option<AccountRecord>)>, StoreError> {
        let id = id.to_owned();
        self.read_together(move |conn| {
            let Some(login) = read_login(conn, &id)? else {
                return Ok(None);
            };
            let Some(rp) = read_relying_party(conn, &login.request.client_id)? else {
                return Ok(None);
            };
            let (login, account) = with_account(conn, login)?;
            Ok(Some((login, rp, account)))
        })
        .await
    }

    async fn login_and_device(
        &self,
        id: &str,
        thumbprint: &str,
    ) -> Result<LoginAndDevice, StoreError> {
        let (id, thumbprint) = (id.to_owned(), thumbprint.to_owned());
        self.read_together(move |conn| {
            Ok((read_login(conn, &id)?, read_device(conn, &thumbprint)?))
        })
        .await
    }

    async fn claim_pushed_login(
        &self,
        par_handle: &str,
        client_id: &str,
        browser_digest: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<LoginRecord>, StoreError> {
        let (par_handle, client_id, browser_digest) = (
            par_handle.to_owned(),
            client_id.to_owned(),
            browser_digest.to_vec(),
        );
        self.write(move |conn| {
            query_one(
                conn,
                sql!(
                    "UPDATE login_transactions SET status = 'pending', browser_digest = ?3, expires_at = ?5
                     WHERE par_handle = ?1 AND client_id = ?2 AND status = 'pushed' AND +expires_at > ?4
                       AND EXISTS (SELECT 1 FROM relying_parties r WHERE r.client_id = ?2 AND r.status = 'active')
                     RETURNING {LOGIN_COLUMNS}"
                ),
                params![par_handle, client_id, browser_digest, now, expires_at],
                db_error,
                login_from,
            )
        })
        .await
    }

    // `+expires_at`: keeps the planner off the expiry index, so the plan cannot depend on
    // the bound time (with STAT4, which the bundled SQLite enables, such a statement is
    // recompiled whenever the value changes).
    async fn finish_login(
        &self,
        id: &str,
        device: &str,
        outcome: &LoginOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (id, device, outcome) = (id.to_owned(), device.to_owned(), outcome.clone());
        // Encoded here, not on the writer thread every commit waits for.
        let released = match &outcome {
            LoginOutcome::Approved { claims, .. } => claims_json(claims),
            LoginOutcome::Refused(_) => String::new(),
        };
        self.write(move |conn| {
            let changed = match outcome {
                LoginOutcome::Approved {
                    account_id,
                    level,
                    claims,
                    auth_time,
                    reset,
                } => in_savepoint(conn, |conn| {
                    let client_id: Option<String> = query_one(
                        conn,
                        "UPDATE login_transactions
                         SET status = 'approved', account_id = ?3, level = ?4, claims = ?5, auth_time = ?6,
                             device_thumbprint = ?7
                         WHERE id = ?1 AND status = 'pending' AND +expires_at > ?2
                           AND (device_thumbprint IS NULL OR device_thumbprint = ?7)
                         RETURNING client_id",
                        params![id, now, account_id, level.as_str(), released, auth_time, device],
                        db_error,
                        |row| Fields::new(row, "login_transactions", "").get("client_id"),
                    )?;
                    let changed = usize::from(client_id.is_some());
                    if let Some(client_id) = client_id {
                        remember_consent(conn, account_id, &client_id, &claims, now)?;
                        for factor in reset {
                            reset_factor(conn, account_id, factor)?;
                        }
                    }
                    Ok(changed)
                })?,
                LoginOutcome::Refused(refusal) => execute(
                    conn,
                    "UPDATE login_transactions SET status = ?3, device_thumbprint = ?4
                     WHERE id = ?1 AND status = 'pending' AND +expires_at > ?2
                       AND (device_thumbprint IS NULL OR device_thumbprint = ?4)",
                    params![id, now, refusal.status().as_str(), device],
                )?,
            };
            Ok(changed == 1)
        })
        .await
    }

    async fn redeem_code(&self, id: &str, now: i64) -> Result<CodeRedemption, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            let redeemed = query_one(
                conn,
                sql!(
                    "UPDATE login_transactions SET code_redeemed_at = ?2
                     WHERE id = ?1 AND status = 'approved' AND code_redeemed_at IS NULL
                     RETURNING {LOGIN_COLUMNS}"
                ),
                params![id, now],
                db_error,
                login_from,
            )?;
            if let Some(login) = redeemed {
                let (login, account) = with_account(conn, login)?;
                return Ok(CodeRedemption::Redeemed {
                    login: Box::new(login),
                    account: account.map(Box::new),
                });
            }
            let used: Option<Option<i64>> = query_one(
                conn,
                "SELECT code_redeemed_at FROM login_transactions WHERE id = ?1 AND status = 'approved'",
                [&id],
                db_error,
                |row| Fields::new(row, "login_transactions", "").get("code_redeemed_at"),
            )?;
            Ok(match used {
                Some(Some(_)) => CodeRedemption::AlreadyRedeemed,
                _ => CodeRedemption::NotApproved,
            })
        })
        .await
    }

    async fn redeem_code_if(
        &self,
        id: &str,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        now: i64,
    ) -> Result<Option<(LoginRecord, Option<AccountRecord>)>, StoreError> {
        let (id, client_id, redirect_uri, code_challenge) = (
            id.to_owned(),
            client_id.to_owned(),
            redirect_uri.to_owned(),
            code_challenge.to_owned(),
        );
        self.write(move |conn| {
            let Some(login) = query_one(
                conn,
                sql!(
                    "UPDATE login_transactions SET code_redeemed_at = ?5
                     WHERE id = ?1 AND client_id = ?2 AND status = 'approved'
                       AND code_redeemed_at IS NULL
                       AND redirect_uri = ?3 AND code_challenge = ?4
                       AND EXISTS (SELECT 1 FROM relying_parties r
                                   WHERE r.client_id = ?2 AND r.status = 'active')
                     RETURNING {LOGIN_COLUMNS}"
                ),
                params![id, client_id, redirect_uri, code_challenge, now],
                db_error,
                login_from,
            )?
            else {
                return Ok(None);
            };
            with_account(conn, login).map(Some)
        })
        .await
    }

    async fn mark_code_replayed(&self, transaction_id: &str, now: i64) -> Result<bool, StoreError> {
        let transaction_id = transaction_id.to_owned();
        self.write(move |conn| {
            execute(
                conn,
                "UPDATE login_transactions SET code_replayed_at = ?2 WHERE id = ?1 AND code_replayed_at IS NULL",
                params![transaction_id, now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn count_pin_evaluation(
        &self,
        account_id: i64,
        login_id: &str,
        device: &str,
        limit: u32,
        approval_digest: &[u8],
    ) -> Result<PinCount, StoreError> {
        let (login_id, device, approval_digest) = (
            login_id.to_owned(),
            device.to_owned(),
            approval_digest.to_vec(),
        );
        self.write(move |conn| {
            in_savepoint(conn, |conn| {
                let taken_by: Option<Option<String>> = query_one(
                    conn,
                    "SELECT device_thumbprint FROM login_transactions WHERE id = ?1",
                    params![login_id],
                    db_error,
                    |row| Fields::new(row, "login_transactions", "").get("device_thumbprint"),
                )?;
                if taken_by
                    .flatten()
                    .is_some_and(|taken_by| taken_by != device)
                {
                    return Ok(PinCount::TakenByAnotherDevice);
                }
                let count: Option<u32> = query_one(
                    conn,
                    "UPDATE accounts SET pin_failures = pin_failures + 1
                     WHERE id = ?1 AND pin_failures < ?2 RETURNING pin_failures",
                    params![account_id, limit],
                    db_error,
                    |row| Fields::new(row, "accounts", "").get("pin_failures"),
                )?;
                let Some(count) = count else {
                    return Ok(PinCount::Locked);
                };
                execute(
                    conn,
                    "UPDATE login_transactions
                     SET pin_evaluated = 1, approval_digest = ?2, device_thumbprint = ?3
                     WHERE id = ?1 AND status = 'pending'",
                    params![login_id, approval_digest, device],
                )?;
                Ok(PinCount::Counted(count))
            })
        })
        .await
    }

    async fn ended_sign_ins(&self, ids: &[String], now: i64) -> Result<Vec<String>, StoreError> {
        // Point reads by key in one read transaction, off the runtime's threads: a node may
        // hold thousands of waiting pages.
        let ids = ids.to_vec();
        self.scan(move |conn| {
            in_read_transaction(conn, |conn| {
                let mut check = conn
                    .prepare_cached(
                        "SELECT 1 FROM login_transactions
                         WHERE id = ?1 AND (status <> 'pending' OR expires_at <= ?2)",
                    )
                    .map_err(db_error)?;
                let mut ended = Vec::new();
                for id in ids {
                    if check.exists(params![id, now]).map_err(db_error)? {
                        ended.push(id);
                    }
                }
                Ok(ended)
            })
        })
        .await
    }

    async fn purge_expired_batch(
        &self,
        cutoffs: PurgeCutoffs,
        batch: u32,
    ) -> Result<(u64, u64), StoreError> {
        // One write job per batch: other writes take their turn in between.
        self.write(move |conn| {
            in_savepoint(conn, |conn| {
                let assertions = execute(
                    conn,
                    "DELETE FROM client_assertions WHERE (client_id, jti) IN (
                       SELECT client_id, jti FROM client_assertions WHERE expires_at < ?1 LIMIT ?2)",
                    params![cutoffs.now, batch],
                )?;
                let sign_ins = execute(
                    conn,
                    "DELETE FROM login_transactions WHERE id IN (
                       SELECT id FROM login_transactions WHERE expires_at < ?1
                         AND (expires_at < ?2 OR (status <> 'approved' AND expires_at < ?3))
                       LIMIT ?4)",
                    params![
                        cutoffs.latest(),
                        cutoffs.approved_before,
                        cutoffs.unfinished_before,
                        batch
                    ],
                )?;
                Ok((assertions as u64, sign_ins as u64))
            })
        })
        .await
    }
}
