//! One sign-in's steps as the benchmarks' service, browser and wallet take them, over
//! keep-alive HTTP/1.1 on 127.0.0.1: authorize, login page, wallet approval (and PIN at
//! L2), back to the service, the code exchange.

use std::collections::HashMap;

use clap::ValueEnum;
use cyberid_crypto::jose::{SigningKey, VerifyingKey};
use cyberid_crypto::pin::{self, Pin};
use cyberid_crypto::{b64, random, sha256};
use cyberid_protocol::{Decision, DecisionResponse, DecisionStatus, LoginDetails, PinResponse};
use serde_json::{Value, json};

pub(super) const REDIRECT_URI: &str = "http://127.0.0.1/bench-callback";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    #[value(name = "1")]
    L1,
    #[value(name = "2")]
    L2,
}

/// One enrolled holder, as its wallet holds it.
pub(super) struct BenchWallet {
    pub device_key: SigningKey,
    pub pin: Pin,
}

/// What every sign-in of a run shares: the service's registration and the platform's keys,
/// the wallets.
pub(super) struct Context {
    pub server: String,
    pub http: reqwest::Client,
    pub client_id: String,
    pub client_secret: String,
    pub issuer_keys: Vec<VerifyingKey>,
    pub wallets: Vec<BenchWallet>,
    pub level: Level,
    /// How long the holder takes to approve a timed sign-in.
    pub hold: std::time::Duration,
}

pub(super) fn failure(context: &str) -> impl Fn(reqwest::Error) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// An approved sign-in's code, with what the client needs to redeem and check it.
pub(super) struct Minted {
    pub code: String,
    pub verifier: String,
    pub nonce: String,
}

/// A sign-in its holder's wallet has approved, the browser not yet back at the client.
pub(super) struct Approved {
    /// The sign-in's id.
    pub id: String,
    cookie: String,
    status_url: String,
    held: Option<AbortOnDrop<Result<Value, reqwest::Error>>>,
    state: String,
    verifier: String,
    nonce: String,
}

/// Steps 1–5: authorize, login page, wallet open (+ PIN at L2) and approval, answered
/// `approved`.
pub(super) async fn approve(
    context: &Context,
    worker: usize,
    level: Level,
    timed: bool,
) -> Result<Approved, String> {
    let wallet = &context.wallets[worker % context.wallets.len()];
    let http = &context.http;
    let server = &context.server;
    let verifier = random::token::<32>();
    let challenge = b64::encode(sha256(verifier.as_bytes()));
    let (state, nonce) = (random::token::<12>(), random::token::<12>());
    let acr = match level {
        Level::L1 => "",
        Level::L2 => "&acr_values=urn%3Acyberid%3Aacr%3Al2",
    };
    let authorize = format!(
        "{server}/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fbench-callback&scope=openid&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256{acr}",
        context.client_id
    );
    // `/authorize` answers with the login page (QR code and all), which names the
    // sign-in's own page, where the browser continues once the wallet has decided.
    let started = http
        .get(&authorize)
        .send()
        .await
        .map_err(failure("authorize"))?;
    if !started.status().is_success() {
        return Err(format!("authorize: HTTP {}", started.status()));
    }
    let cookie = started
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no login cookie")?
        .to_owned();
    let page = started.text().await.map_err(failure("login page"))?;
    let attribute = |name: &str| {
        page.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    let login_page = attribute("data-page").ok_or("the login page names no sign-in page")?;
    let status_url = attribute("data-status").ok_or("the login page names no status URL")?;

    let ask_status = || {
        http.get(format!("{status_url}?wait=1"))
            .header("cookie", &cookie)
            .send()
    };
    // With a holder who takes time, the page's held status request waits meanwhile.
    let hold = if timed {
        context.hold
    } else {
        std::time::Duration::ZERO
    };
    // Aborted if the sign-in fails before its answer is awaited: no request of a failed
    // sign-in stays held into the next measurement.
    let held = (!hold.is_zero()).then(|| {
        let asked = ask_status();
        AbortOnDrop(tokio::spawn(
            async move { asked.await?.json::<Value>().await },
        ))
    });
    if held.is_some() {
        tokio::time::sleep(hold).await;
    }
    let id = login_page.rsplit('/').next().unwrap_or_default().to_owned();
    let key = &wallet.device_key;
    let details: LoginDetails = http
        .get(format!("{server}/api/v1/logins/{id}"))
        .send()
        .await
        .map_err(failure("open"))?
        .json()
        .await
        .map_err(failure("open"))?;
    let approval =
        cyberid_wallet::sign_approval(key, &details, Decision::Approve, details.level, Vec::new())
            .map_err(|e| e.to_string())?;
    let pin_key = match level {
        Level::L1 => None,
        Level::L2 => {
            let (blinding, blinded_pin) = pin::blind(&wallet.pin).map_err(|e| e.to_string())?;
            let evaluated: PinResponse = http
                .post(format!("{server}/api/v1/logins/{id}/pin"))
                .json(&json!({ "approval": approval, "blinded_pin": blinded_pin }))
                .send()
                .await
                .map_err(failure("pin"))?
                .json()
                .await
                .map_err(failure("pin"))?;
            Some(
                blinding
                    .finish(&wallet.pin, &evaluated.evaluated_pin)
                    .map_err(|e| e.to_string())?,
            )
        }
    };
    let mut body = json!({ "approval": approval });
    if let Some(pin_key) = pin_key {
        body["pin_proof"] = json!(pin_key.sign(approval.as_bytes()));
    }
    let decided: Value = http
        .post(format!("{server}/api/v1/logins/{id}/decision"))
        .json(&body)
        .send()
        .await
        .map_err(failure("decision"))?
        .json()
        .await
        .map_err(failure("decision"))?;
    // An error's body has no status: it is reported whole.
    let approved = serde_json::from_value::<DecisionResponse>(decided.clone())
        .is_ok_and(|response| response.status == DecisionStatus::Approved);
    if !approved {
        return Err(format!("decision: {decided}"));
    }
    Ok(Approved {
        id,
        cookie,
        status_url,
        held,
        state,
        verifier,
        nonce,
    })
}

/// Step 6: the login page's script: the held status request answers, and the browser goes
/// where the answer says (only this browser, by its cookie, is told): back to the client.
pub(super) async fn back_to_client(
    context: &Context,
    approved: Approved,
) -> Result<Minted, String> {
    let Approved {
        cookie,
        status_url,
        held,
        state,
        verifier,
        nonce,
        ..
    } = approved;
    let server = &context.server;
    let ask_status = || {
        context
            .http
            .get(format!("{status_url}?wait=1"))
            .header("cookie", &cookie)
            .send()
    };
    let done: Value = match held {
        Some(mut held) => (&mut held.0)
            .await
            .map_err(|e| format!("status: {e}"))?
            .map_err(failure("status"))?,
        None => ask_status()
            .await
            .map_err(failure("status"))?
            .json()
            .await
            .map_err(failure("status"))?,
    };
    let redirect = done["location"]
        .as_str()
        .ok_or_else(|| format!("status: {done}"))?;
    let query = redirect.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let params: HashMap<String, String> = form_urlencoded_pairs(query);
    if params.get("state") != Some(&state)
        || params.get("iss").map(String::as_str) != Some(server.as_str())
    {
        return Err("state or iss does not match".into());
    }
    let code = params.get("code").cloned().ok_or("no code")?;
    Ok(Minted {
        code,
        verifier,
        nonce,
    })
}

fn form_urlencoded_pairs(query: &str) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// The code exchange at `/token` (client authentication, PKCE): its answer, tokens or an
/// error.
pub(super) async fn exchange(context: &Context, minted: &Minted) -> Result<Value, String> {
    context
        .http
        .post(format!("{}/token", context.server))
        .basic_auth(&context.client_id, Some(&context.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", minted.code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", minted.verifier.as_str()),
        ])
        .send()
        .await
        .map_err(failure("token"))?
        .json()
        .await
        .map_err(failure("token"))
}

/// A spawned task that is aborted when its handle goes out of scope unawaited.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
