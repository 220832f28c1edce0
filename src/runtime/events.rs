//! GetContainerEvents: the index's container events, with the pod's CNI
//! addresses and image volumes shown as the status RPCs show them, until
//! the subscriber falls too far behind or docker-cri shuts down.

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::api;
use crate::error::{Error, Result};
use crate::runtime::Runtime;

impl Runtime {
    pub fn container_events(
        self: &Arc<Self>,
    ) -> impl Stream<Item = Result<api::ContainerEventResponse>> + Send + 'static {
        let receiver = self.index.subscribe();
        futures_util::stream::unfold(Some((receiver, self.clone())), |open| async move {
            let (mut receiver, runtime) = open?;
            let next = tokio::select! {
                next = receiver.recv() => next,
                () = runtime.shutting_down.cancelled() => return None,
            };
            match next {
                Ok(mut event) => {
                    if let Some(status) = event.pod_sandbox_status.as_mut() {
                        runtime.add_cni_network(status);
                    }
                    for status in &mut event.containers_statuses {
                        runtime.image_volumes.describe(&mut status.mounts);
                    }
                    Some((Ok(event), Some((receiver, runtime))))
                }
                // Events were dropped for this subscriber: going on would
                // hide them. Ending the stream makes kubelet relist.
                Err(RecvError::Lagged(missed)) => Some((
                    Err(Error::ResourceExhausted(format!(
                        "container event subscriber fell {missed} events behind; resubscribe and relist"
                    ))),
                    None,
                )),
                Err(RecvError::Closed) => None,
            }
        })
    }

    /// Ends long-lived streams (container events) so shutdown need not wait
    /// for their clients to hang up.
    pub fn begin_shutdown(&self) {
        self.shutting_down.cancel();
    }
}
