//! The test platform: a real server on a free port over a real store (SQLite, or a fresh
//! PostgreSQL schema) and a synthetic registry; enrolment requests, enrolled holders, and
//! more nodes over the same store. The enrolment tests and the sign-in tests share it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::pin::{self, Pin};
use cyberid_domain::{PersonRecord, age_on};
use cyberid_platform::keys::PlatformKeys;
use cyberid_platform::{Platform, Secret, Settings};
use cyberid_protocol::{
    ENROLMENT_PATH, ENROLMENT_PROOF_TYP, ENROLMENT_START_PATH, EnrolmentProofClaims,
    EnrolmentRequest, EnrolmentStartResponse,
};
use cyberid_registry::face::{live_sample, sample_to_base64};
use cyberid_registry::generate::Generator;
use cyberid_store::Store;
use rand::SeedableRng;
use serde_json::{Value, json};

pub struct Harness {
    /// The node's settings (its issuer as configured, not as derived).
    pub settings: Settings,
    pub url: String,
    /// The metrics listener's URL, when `metrics.listen` is set.
    pub metrics_url: Option<String>,
    pub store: Arc<dyn Store>,
    /// The platform behind `url`, for what a test checks of a node's own state.
    pub platform: Platform,
    pub people: Vec<PersonRecord>,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub async fn start(postgres: bool, tweak: impl FnOnce(&mut Settings)) -> Harness {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.store.data = data.path().to_owned();
    if postgres {
        let server = cyberid_testkit::postgres().expect("PostgreSQL is configured");
        let url = server.fresh_schema().await;
        settings.store.database_url = Some(Secret::new(url));
        settings.store.pool_size = 8;
    }
    tweak(&mut settings);
    let bound = cyberid_platform::bind(settings).await.unwrap();
    let platform = bound.platform.clone();
    let store = Arc::clone(&platform.store);
    let people: Vec<PersonRecord> = Generator::new(42).take(400).collect();
    store.registry_upsert(people.clone()).await.unwrap();
    let url = bound.url.clone();
    let metrics_url = bound.metrics_address.map(|a| format!("http://{a}"));
    tokio::spawn(bound.serve(std::future::pending()));
    Harness {
        settings: platform.settings.clone(),
        url,
        metrics_url,
        store,
        platform,
        people,
        data,
        http: reqwest::Client::new(),
    }
}

/// Runs a check on SQLite and, when configured, on PostgreSQL.
pub async fn on_each_backend<F, Fut>(check: F)
where
    F: Fn(Harness) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    on_each_backend_with(|_| {}, check).await;
}

/// [`on_each_backend`] with the platform's settings tweaked on every node.
pub async fn on_each_backend_with<F, Fut>(tweak: impl Fn(&mut Settings), check: F)
where
    F: Fn(Harness) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    check(start(false, &tweak).await).await;
    if cyberid_testkit::postgres().is_some() {
        check(start(true, &tweak).await).await;
    }
}

pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

pub fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

impl Harness {
    /// The `n`-th person aged 18 or more.
    pub fn adult(&self, n: usize) -> &PersonRecord {
        self.people
            .iter()
            .filter(|p| age_on(p.birth_date, today()).unwrap() >= 18)
            .nth(n)
            .unwrap()
    }

    pub fn child(&self) -> &PersonRecord {
        self.people
            .iter()
            .find(|p| age_on(p.birth_date, today()).unwrap() < 14)
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A complete, valid enrolment request for `person` (ticket, PIN verifier, proof).
    pub async fn request_for(
        &self,
        person: &PersonRecord,
        device_key: &SigningKey,
    ) -> EnrolmentRequest {
        let pin = Pin::parse("135790").unwrap();
        let (blinding, blinded_pin) = pin::blind(&pin).unwrap();
        let (status, started) = self
            .post(ENROLMENT_START_PATH, &json!({ "blinded_pin": blinded_pin }))
            .await;
        assert_eq!(status, 200, "{started}");
        let started: EnrolmentStartResponse = serde_json::from_value(started).unwrap();
        let pin_verifier = blinding
            .finish(&pin, &started.evaluated_pin)
            .unwrap()
            .verifier();
        let proof = device_key
            .sign_jwt(
                ENROLMENT_PROOF_TYP,
                &EnrolmentProofClaims {
                    ticket: started.ticket.clone(),
                    pin_verifier: pin_verifier.clone(),
                    iat: cyberid_platform::now(),
                },
            )
            .unwrap();
        EnrolmentRequest {
            ticket: started.ticket,
            id_number: person.id_number.as_str().to_owned(),
            name: person.name.as_str().to_owned(),
            face_sample: sample_to_base64(&live_sample(&person.face, &mut rng())),
            device_key: serde_json::to_value(device_key.verifying_key().jwk()).unwrap(),
            pin_verifier,
            proof,
        }
    }

    pub async fn valid_body(&self, person: &PersonRecord) -> Value {
        let (device_key, _) = SigningKey::generate().unwrap();
        serde_json::to_value(self.request_for(person, &device_key).await).unwrap()
    }

    /// Posts `body` and asserts the refusal: status, error code, a description, and a
    /// store exactly as before.
    pub async fn assert_refused(&self, body: &Value, status: u16, code: &str) {
        let before = self.store.counts().await.unwrap();
        let (got, error) = self.post(ENROLMENT_PATH, body).await;
        assert_eq!(
            (got, error["error"].as_str()),
            (status, Some(code)),
            "{error}"
        );
        assert!(
            error["error_description"]
                .as_str()
                .is_some_and(|d| d.len() > 10),
            "{error}"
        );
        assert_eq!(
            self.store.counts().await.unwrap(),
            before,
            "the store changed"
        );
    }

    pub async fn raw(&self, content_type: &str, body: Vec<u8>) -> (u16, Value, bool) {
        let before = self.store.counts().await.unwrap();
        let response = self
            .http
            .post(format!("{}{ENROLMENT_PATH}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let error = response.json().await.unwrap_or(Value::Null);
        let unchanged = self.store.counts().await.unwrap() == before;
        (status, error, unchanged)
    }
}

impl Harness {
    /// Another platform node over the same store and keys (as a second server would be),
    /// with its own process state (caches, waiting login pages); its URL.
    pub async fn second_node(&self, tweak: impl FnOnce(&mut Settings)) -> String {
        self.another_node(tweak).await.0
    }

    /// [`Harness::second_node`], with the node's platform, for what a test checks of its
    /// own state or drives by hand.
    pub async fn another_node(&self, tweak: impl FnOnce(&mut Settings)) -> (String, Platform) {
        let mut settings = Settings::default();
        settings.server.listen = "127.0.0.1:0".parse().unwrap();
        settings.server.issuer = Some(self.url.clone());
        settings.store = self.settings.store.clone();
        tweak(&mut settings);
        let bound = cyberid_platform::bind(settings).await.unwrap();
        let url = format!("http://{}", bound.address);
        let platform = bound.platform.clone();
        tokio::spawn(bound.serve(std::future::pending()));
        (url, platform)
    }

    pub fn keys(&self) -> PlatformKeys {
        PlatformKeys::load_or_create(self.data.path()).unwrap()
    }

    /// Enrols `person` over the API and returns the device key.
    pub async fn enrol(&self, person: &PersonRecord) -> SigningKey {
        let (device_key, _) = SigningKey::generate().unwrap();
        let request = self.request_for(person, &device_key).await;
        let (status, body) = self
            .post(ENROLMENT_PATH, &serde_json::to_value(&request).unwrap())
            .await;
        assert_eq!(status, 201, "{body}");
        let kid = device_key.verifying_key().thumbprint();
        device_key.with_kid(kid)
    }
}
