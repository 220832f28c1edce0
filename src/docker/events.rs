//! Docker's event stream, narrowed to the container events that change what
//! docker-cri reports, as docker-cri's own event type.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::query_parameters::EventsOptions;
use futures_util::{Stream, StreamExt};

use super::DockerClient;
use crate::error::Result;

/// The container actions that change a container's state, name or
/// resources. exec_*, health_status, attach, resize and the like change
/// nothing a List or Status shows, and exec probes would otherwise cause an
/// inspect every few seconds per container.
pub const STATE_ACTIONS: &[&str] = &[
    "create", "start", "die", "destroy", "rename", "update", "oom", "pause", "unpause", "restart",
];

/// One container event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub id: String,
    /// Docker's action (`create`, `die`, ...).
    pub action: String,
    /// When it happened, in Unix nanoseconds (Docker's `timeNano`).
    pub time_nanos: i64,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<ContainerEvent>> + Send>>;

impl DockerClient {
    /// Container events for containers carrying `label` (a key, or
    /// `key=value`), from `since_nanos` on (Docker replays what it still
    /// holds from before the call), then live. No per-call timeout: the
    /// stream lives until Docker or the connection ends it.
    pub async fn container_events(&self, label: &str, since_nanos: i64) -> Result<EventStream> {
        let docker = self.handle().await?;
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![label.to_string()]),
            (
                "event".to_string(),
                STATE_ACTIONS.iter().map(|a| a.to_string()).collect(),
            ),
        ]);
        let options = EventsOptions {
            since: Some(docker_timestamp(since_nanos)),
            until: None,
            filters: Some(filters),
        };
        let stream = docker.events(Some(options)).filter_map(|item| async move {
            match item {
                Ok(message) => {
                    let id = message.actor.and_then(|a| a.id).unwrap_or_default();
                    (!id.is_empty()).then(|| {
                        Ok(ContainerEvent {
                            id,
                            action: message.action.unwrap_or_default(),
                            time_nanos: message.time_nano.unwrap_or(0),
                        })
                    })
                }
                Err(e) => Some(Err(super::from_bollard(e))),
            }
        });
        Ok(Box::pin(stream))
    }
}

/// Docker's `since` format: Unix seconds with an optional fraction.
fn docker_timestamp(nanos: i64) -> String {
    let nanos = nanos.max(0);
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::docker_timestamp;

    #[test]
    fn since_is_seconds_with_nine_fraction_digits() {
        assert_eq!(
            docker_timestamp(1_700_000_000_000_000_123),
            "1700000000.000000123"
        );
        assert_eq!(docker_timestamp(5), "0.000000005");
        assert_eq!(docker_timestamp(-3), "0.000000000");
    }
}
