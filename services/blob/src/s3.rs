//! The production object store: S3, or anything speaking it (Garage, MinIO, R2), through aws-sdk-s3.
//!
//! Upload URLs are SigV4-presigned `PUT`s with `Content-Length` and `x-amz-checksum-sha256` among the signed
//! headers, so the store refuses another length or other bytes before the server is asked to confirm. Addresses
//! are path-style (`<endpoint>/<bucket>/<key>`), which every S3-compatible store understands.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::ChecksumMode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use tracing::instrument;

use crate::objects::{ObjectKey, ObjectMeta, ObjectStore, ObjectStoreError, Presigned, UrlHolder};

/// Where the bucket is and how to sign in to it: the server's `s3` settings (`SYNCKIT_S3_*`), and what tests
/// point at their Garage.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `https://s3.eu-west-1.amazonaws.com`, or `http://127.0.0.1:3900` for a local Garage.
    pub endpoint: String,
    /// The endpoint clients reach the store at, when it is not `endpoint` (`SYNCKIT_S3_PUBLIC_ENDPOINT`): the server
    /// talks to the store on a private address and signs URLs for the public one. A signature covers the host, so
    /// URLs must be signed for the address clients use.
    #[serde(default)]
    pub public_endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

/// The longest a readiness check waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What AWS itself assumes when no region is named.
fn default_region() -> String {
    "us-east-1".to_owned()
}

/// The S3 adapter.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    /// Signs the URLs clients use: `client` itself, or one for the public endpoint.
    presigner: Client,
    bucket: String,
}

impl S3Store {
    /// A client for the bucket. Nothing is sent until the first request.
    pub fn new(config: &S3Config) -> Self {
        let credentials = Credentials::new(
            &config.access_key_id,
            config.secret_access_key.expose_secret(),
            None,
            None,
            "synckit-settings",
        );
        let client = |endpoint: &str| {
            let sdk_config = aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(endpoint)
                .region(Region::new(config.region.clone()))
                .credentials_provider(credentials.clone())
                .force_path_style(true)
                // The only checksum is the one we sign into uploads; no others are added to requests.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .build();
            Client::from_conf(sdk_config)
        };
        let store = client(&config.endpoint);
        let presigner = config.public_endpoint.as_deref().map_or_else(|| store.clone(), client);
        Self { client: store, presigner, bucket: config.bucket.clone() }
    }
}

fn presigned(request: &PresignedRequest) -> Presigned {
    Presigned {
        url: request.uri().to_owned(),
        headers: request
            .headers()
            // The HTTP client sets Host from the URL itself.
            .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect(),
    }
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, ObjectStoreError> {
    PresigningConfig::expires_in(expires_in).map_err(ObjectStoreError::other)
}

/// Network failures, timeouts and the store's own 5xx answers can pass; the rest will not.
fn classify<E, R>(err: SdkError<E, R>) -> ObjectStoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(e) => {
            matches!(e.err().code(), Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"))
        }
        _ => false,
    };
    if transient { ObjectStoreError::unavailable(err) } else { ObjectStoreError::other(err) }
}

#[async_trait]
impl ObjectStore for S3Store {
    #[instrument(level = "debug", name = "s3 presign_put", skip_all,
        fields(otel.kind = "internal", rpc.system.name = "aws-api", rpc.method = "PutObject", aws.s3.bucket = %self.bucket))]
    async fn presign_put(
        &self,
        key: &ObjectKey,
        size: u64,
        checksum: &[u8; 32],
        expires_in: Duration,
        // S3 checks only its own signature: the URL lasts its expiry whatever becomes of the holder.
        _holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError> {
        let request = self
            .presigner
            .put_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .content_length(i64::try_from(size).map_err(ObjectStoreError::other)?)
            .checksum_sha256(STANDARD.encode(checksum))
            .presigned(presigning(expires_in)?)
            .await
            .map_err(classify)?;
        Ok(presigned(&request))
    }

    #[instrument(level = "debug", name = "s3 presign_get", skip_all,
        fields(otel.kind = "internal", rpc.system.name = "aws-api", rpc.method = "GetObject", aws.s3.bucket = %self.bucket))]
    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
        _holder: UrlHolder,
    ) -> Result<Presigned, ObjectStoreError> {
        let request = self
            .presigner
            .get_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .presigned(presigning(expires_in)?)
            .await
            .map_err(classify)?;
        Ok(presigned(&request))
    }

    #[instrument(level = "debug", name = "s3 head", skip_all,
        fields(otel.kind = "client", rpc.system.name = "aws-api", rpc.method = "HeadObject", aws.s3.bucket = %self.bucket))]
    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        let answer = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match answer {
            Ok(head) => Ok(Some(ObjectMeta {
                size: head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                checksum: head
                    .checksum_sha256()
                    .and_then(|b64| STANDARD.decode(b64).ok())
                    .and_then(|bytes| bytes.try_into().ok()),
            })),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    #[instrument(level = "debug", name = "s3 delete", skip_all,
        fields(otel.kind = "client", rpc.system.name = "aws-api", rpc.method = "DeleteObject", aws.s3.bucket = %self.bucket))]
    async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectStoreError> {
        self.client.delete_object().bucket(&self.bucket).key(key.to_string()).send().await.map_err(classify)?;
        Ok(())
    }

    /// `HeadBucket`: the bucket exists and these keys may use it. Bounded by [`READY_TIMEOUT`] whatever the caller
    /// does, so a store that accepts connections and never answers cannot hold a readiness probe.
    async fn ready(&self) -> Result<(), ObjectStoreError> {
        let head = self.client.head_bucket().bucket(&self.bucket).send();
        match tokio::time::timeout(READY_TIMEOUT, head).await {
            Ok(answer) => answer.map(drop).map_err(classify),
            Err(elapsed) => Err(ObjectStoreError::unavailable(elapsed)),
        }
    }
}
