//! The SDK against a real server, one test binary: each module is one area of behaviour.

mod blobs;
mod convergence;
mod devices;
mod envelope;
mod live;
mod no_plaintext;
mod outbox;
mod outbox_crash;
mod outbox_faults;
mod quota;
mod recovery;
mod retries;
mod retry_policy;
mod sync;
mod undecryptable;

use std::sync::Arc;

use synckit::keystore::MemoryKeyStore;
use synckit::{SyncKitClient, SyncKitConfig};
use synckit_testkit::TestServer;

/// SDK clients of a test server's app.
pub trait Clients {
    /// A client with its own in-memory key store: a separate device.
    fn client(&self) -> SyncKitClient;

    /// A client on `url` keeping keys in `keys` (share it to model one device restarting).
    fn client_with(&self, url: &str, keys: Arc<MemoryKeyStore>) -> SyncKitClient;

    /// A client of another app of the deployment, whose API key is `api_key`.
    fn client_in_app(&self, api_key: &str) -> SyncKitClient;
}

impl Clients for TestServer {
    fn client(&self) -> SyncKitClient {
        self.client_with(&self.url, Arc::new(MemoryKeyStore::default()))
    }

    fn client_with(&self, url: &str, keys: Arc<MemoryKeyStore>) -> SyncKitClient {
        client(url, &self.api_key, keys)
    }

    fn client_in_app(&self, api_key: &str) -> SyncKitClient {
        client(&self.url, api_key, Arc::new(MemoryKeyStore::default()))
    }
}

fn client(url: &str, api_key: &str, keys: Arc<MemoryKeyStore>) -> SyncKitClient {
    let dir = tempfile::tempdir().unwrap().keep();
    SyncKitClient::new(SyncKitConfig::new(url, api_key).key_store(keys).data_dir(dir).max_retries(3))
}
