//! What every load run measures and reports, and where it may run.

use std::time::Duration;

use cyberid_protocol::ErrorCode;
use serde_json::json;

use crate::output::Failure;

/// Load tests target this machine only: `http://` to a loopback address or `localhost`,
/// with no user information (`http://127.0.0.1:1@elsewhere/` names the host `elsewhere`).
pub(crate) fn require_local(server: &str) -> Result<(), Failure> {
    let local = reqwest::Url::parse(server).is_ok_and(|url| {
        url.scheme() == "http"
            && url.username().is_empty()
            && url.password().is_none()
            && url.host_str().is_some_and(|host| {
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
    });
    if local {
        Ok(())
    } else {
        Err(Failure::new(
            ErrorCode::InvalidInput,
            "load tests only target this machine (http://127.0.0.1:PORT)",
        ))
    }
}

/// What one timed load run saw.
pub(crate) struct Measured {
    /// Latencies of the operations that completed, sorted.
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// The server's CPU seconds over the run (with `--server-pid`).
    pub server_cpu_seconds: Option<f64>,
}

/// The report of a load run, as every `cyberid bench` mode prints it; an error when no
/// operation completed (a run of failures is not a measurement).
pub(crate) fn report(
    operation: &str,
    server: &str,
    concurrency: usize,
    measured: &Measured,
    server_pid: Option<u32>,
) -> Result<serde_json::Value, Failure> {
    if let Some(error) = &measured.first_error {
        eprintln!("{} errors; first: {error}", measured.errors);
    }
    let completed = measured.latencies.len();
    if completed == 0 {
        return Err(Failure::new(
            ErrorCode::BenchFailed,
            format!(
                "no {operation} completed ({} errors; first: {})",
                measured.errors,
                measured.first_error.as_deref().unwrap_or("none")
            ),
        ));
    }
    // Below one tick of the kernel's CPU clock (10 ms) nothing was measured: no figure.
    let server_cpu = measured.server_cpu_seconds.filter(|cpu| *cpu > 0.0);
    Ok(json!({
        "operation": operation,
        "server": server,
        "concurrency": concurrency,
        "completed": completed,
        "errors": measured.errors,
        "seconds": measured.seconds,
        "per_second": completed as f64 / measured.seconds.max(1e-9),
        "latency_ms": {
            "p50": percentile_ms(&measured.latencies, 0.50),
            "p90": percentile_ms(&measured.latencies, 0.90),
            "p99": percentile_ms(&measured.latencies, 0.99),
        },
        "server_cpu_ms_per_op": server_cpu.map(|cpu| cpu * 1000.0 / completed as f64),
        "ops_per_server_cpu_second": server_cpu.map(|cpu| completed as f64 / cpu),
        "server_rss_mb": server_pid.and_then(process_rss_mb),
    }))
}

pub(crate) fn percentile_ms(sorted: &[Duration], quantile: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[rank].as_secs_f64() * 1000.0)
}

/// User + system CPU seconds of a process (all threads), from /proc/PID/stat. Linux
/// reports them in clock ticks of 1/100 s (USER_HZ).
pub(crate) fn process_cpu_seconds(pid: u32) -> Result<f64, Failure> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Failure::from(format!("cannot read /proc/{pid}/stat: {e}")))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / 100.0)
}

pub(crate) fn process_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::{Measured, report, require_local};

    #[test]
    fn a_run_in_which_nothing_completed_is_an_error_not_a_report() {
        let failed = Measured {
            latencies: Vec::new(),
            errors: 3,
            first_error: Some("state or iss does not match".into()),
            seconds: 0.5,
            server_cpu_seconds: Some(0.2),
        };
        let Err(error) = report("login", "http://localhost:1", 3, &failed, None) else {
            panic!("a report of nothing");
        };
        assert_eq!(error.code, "bench_failed");
        assert!(
            error.description.contains("state or iss"),
            "{}",
            error.description
        );
        let one = Measured {
            latencies: vec![std::time::Duration::from_millis(2)],
            errors: 2,
            ..failed
        };
        let Ok(reported) = report("login", "http://localhost:1", 3, &one, None) else {
            panic!("no report of one completed operation");
        };
        assert_eq!(reported["completed"], 1);
        assert_eq!(reported["server_cpu_ms_per_op"], 200.0);
    }

    #[test]
    fn only_this_machine_is_a_target() {
        for local in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3:80",
            "http://[::1]:8080",
            "http://localhost:8080",
        ] {
            assert!(require_local(local).is_ok(), "{local}");
        }
        for remote in [
            "http://192.0.2.1:8080",
            "http://127.0.0.1:1@192.0.2.1:8080",
            "http://user:pw@127.0.0.1:8080",
            "http://127.0.0.1.example:8080",
            "http://localhost.example:8080",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "",
        ] {
            assert!(require_local(remote).is_err(), "{remote}");
        }
    }
}
