//! Prometheus metrics on a listener of their own (`metrics.listen`, off by default and
//! never on the public one): requests by route and status with latency histograms, sign-ins
//! by level and outcome, enrolments by outcome, limits reached, and the store's timings and
//! errors (recorded by the store itself through the `metrics` facade).
//!
//! Labels are routes as templates (`/login/{id}`), statuses, levels, outcomes and limit
//! names: never a person, a sign-in, an address or a client. One recorder per process,
//! installed by the first node that serves metrics; every node of the process renders it.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use cyberid_domain::AssuranceLevel;
use cyberid_store::{LoginOutcome, Refusal};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: from a point read to a login page waiting for its decision.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn recorder() -> Result<PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Counts and times every request by its route template, method and status.
pub async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "cyberid_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "cyberid_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status,
    )
    .increment(1);
    response
}

/// A sign-in ended, with its level (when approved) and outcome.
pub fn sign_in_ended(outcome: &LoginOutcome) {
    let (level, outcome) = match outcome {
        LoginOutcome::Approved { level, .. } => (level_label(*level), "approved"),
        LoginOutcome::Refused(Refusal::Declined) => ("none", "declined"),
        LoginOutcome::Refused(Refusal::Failed) => ("none", "failed"),
    };
    metrics::counter!("cyberid_sign_ins_total", "level" => level, "outcome" => outcome)
        .increment(1);
}

fn level_label(level: AssuranceLevel) -> &'static str {
    match level {
        AssuranceLevel::L1 => "L1",
        AssuranceLevel::L2 => "L2",
        AssuranceLevel::L3 => "L3",
    }
}

/// An enrolment answered: `enrolled`, or the error code it was refused with.
pub fn enrolment_answered(outcome: &'static str) {
    metrics::counter!("cyberid_enrolments_total", "outcome" => outcome).increment(1);
}

/// A request refused by the rate limit named by its setting.
pub fn limit_reached(limit: &'static str) {
    metrics::counter!("cyberid_limits_reached_total", "limit" => limit).increment(1);
}
