//! The three things the index asks of Docker, behind a trait so that the
//! index runs against a scripted fake in unit tests.

use std::future::Future;
use std::sync::Arc;

use crate::docker::DockerClient;
use crate::docker::events::EventStream;
use crate::error::Result;
use crate::mapping::labels;

use super::record::Record;

pub trait StateSource: Send + Sync + 'static {
    /// The IDs of every container docker-cri manages (sandboxes and app
    /// containers, running or not).
    fn managed_ids(&self) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// The record of one container now; `None` when Docker has no such
    /// container or it is not one docker-cri manages.
    fn record(&self, id: &str) -> impl Future<Output = Result<Option<Record>>> + Send;
    /// Events of managed containers from `since_nanos` on, then live.
    fn events(&self, since_nanos: i64) -> impl Future<Output = Result<EventStream>> + Send;
}

impl StateSource for DockerClient {
    async fn managed_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .list_containers(&[labels::TYPE.to_string()])
            .await?
            .into_iter()
            .filter_map(|c| c.id)
            .collect())
    }

    async fn record(&self, id: &str) -> Result<Option<Record>> {
        Ok(match self.inspect_container(id).await? {
            Some(inspect) => record_of(&inspect).await,
            None => None,
        })
    }

    async fn events(&self, since_nanos: i64) -> Result<EventStream> {
        self.container_events(labels::TYPE, since_nanos).await
    }
}

/// The record of an inspected container (see `Record::from_inspect`),
/// with the user in effect read from the kernel while it has a process.
pub async fn record_of(inspect: &bollard::models::ContainerInspectResponse) -> Option<Record> {
    let pid = inspect
        .state
        .as_ref()
        .filter(|s| s.running == Some(true))
        .and_then(|s| s.pid)
        .filter(|p| *p > 0);
    let proc_status = match pid {
        Some(pid) => tokio::fs::read_to_string(format!("/proc/{pid}/status"))
            .await
            .ok(),
        None => None,
    };
    Record::from_inspect(inspect, proc_status.as_deref())
}

impl<T: StateSource> StateSource for Arc<T> {
    fn managed_ids(&self) -> impl Future<Output = Result<Vec<String>>> + Send {
        (**self).managed_ids()
    }
    fn record(&self, id: &str) -> impl Future<Output = Result<Option<Record>>> + Send {
        (**self).record(id)
    }
    fn events(&self, since_nanos: i64) -> impl Future<Output = Result<EventStream>> + Send {
        (**self).events(since_nanos)
    }
}
