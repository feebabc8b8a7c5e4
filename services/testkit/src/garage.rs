//! The test S3 store: the single-node Garage `ops/ensure-garage` starts, with the bucket and key it creates.

use anyhow::{Context, Result};
use synckit_blob::S3Config;

/// Where the test Garage's S3 API listens.
pub const GARAGE_ADDR: &str = "127.0.0.1:3900";

/// The test Garage, after checking that it answers. Tests keep apart by key prefix: every test makes its own app.
pub async fn garage() -> Result<S3Config> {
    tokio::net::TcpStream::connect(GARAGE_ADDR).await.with_context(|| {
        format!("cannot reach the test Garage at {GARAGE_ADDR}: run ops/test, or ops/ensure-garage")
    })?;
    Ok(S3Config {
        endpoint: format!("http://{GARAGE_ADDR}"),
        public_endpoint: None,
        region: "garage".to_owned(),
        bucket: "synckit-test".to_owned(),
        access_key_id: "GK5a11ed5ecdeadbeef0123456".to_owned(),
        secret_access_key: "7e57ab1e5ecde7c0ffee0ddba11b0a7c0ffeec0deca7f00dfacadebeaded1e55".into(),
    })
}
