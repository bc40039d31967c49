//! Inbound integrations and stock feeds.

use crate::App;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub fn spawn_workers(_app: App, _shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
