//! Per-RPC plumbing: the request deadline, one span per call, the outcome
//! logged once, and errors converted to statuses.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;
use tonic::{Response, Status};
use tracing::{Instrument, Span};

use super::status::to_status;
use crate::error::{Error, Result};
use crate::runtime::work::WorkTracker;

/// Runs `work` for `method` inside `span`, bounded by the client's deadline.
pub async fn handle<T>(
    method: &'static str,
    span: Span,
    metadata: &MetadataMap,
    work: impl Future<Output = Result<T>>,
) -> Result<Response<T>, Status> {
    let deadline = client_deadline(metadata);
    async move {
        let started = Instant::now();
        let result = match deadline {
            // Finish a little before the client gives up, so that it gets
            // our DeadlineExceeded rather than a cancellation, and the work
            // (a pull, say) is dropped and so aborted.
            Some(limit) => match tokio::time::timeout(limit.mul_f64(0.95), work).await {
                Ok(r) => r,
                Err(_) => Err(Error::DeadlineExceeded {
                    what: method.to_string(),
                    after: limit,
                }),
            },
            None => work.await,
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(value) => {
                tracing::debug!(elapsed_ms, "ok");
                Ok(Response::new(value))
            }
            Err(error) => {
                match &error {
                    Error::NotFound(_) | Error::InvalidArgument(_) | Error::Unimplemented(_) => {
                        tracing::info!(elapsed_ms, %error, "refused")
                    }
                    _ => tracing::warn!(elapsed_ms, %error, "failed"),
                }
                Err(to_status(error))
            }
        }
    }
    .instrument(span)
    .await
}

/// Runs `work` on its own task so that it finishes (including its cleanup on
/// failure) even when the caller gives up and the RPC future is dropped. The
/// tracker lets shutdown wait for it.
pub async fn detached<T: Send + 'static>(
    tracker: &WorkTracker,
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tracker
        .spawn(work.in_current_span())
        .await
        .map_err(|e| Error::internal(format!("request task failed: {e}")))?
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H M S m u n).
pub fn client_deadline(metadata: &MetadataMap) -> Option<Duration> {
    parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A required sub-message, or InvalidArgument naming it.
pub fn required<'a, T>(field: &'a Option<T>, name: &str) -> Result<&'a T> {
    field
        .as_ref()
        .ok_or_else(|| Error::invalid(format!("{name} is required")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_table() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("30S", Some(Duration::from_secs(30))),
            ("100m", Some(Duration::from_millis(100))),
            ("5u", Some(Duration::from_micros(5))),
            ("7n", Some(Duration::from_nanos(7))),
            ("99999999S", Some(Duration::from_secs(99_999_999))),
            ("", None),
            ("S", None),
            ("10x", None),
            ("123456789S", None),
            ("-1S", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_grpc_timeout(text), want, "{text:?}");
        }
    }
}
