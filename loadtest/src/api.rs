//! Requests through goose, so that each is timed and counted under a stable name (`POST push`, `GET pull`, …)
//! that `--threshold "p99<25ms for POST push"` can name.

use std::time::Duration;

use goose::goose::GooseResponse;
use goose::prelude::*;
use reqwest::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A transaction's error: what goose counts and shows in its errors table.
pub(crate) type Failure = Box<TransactionError>;

/// A failure of the load test's own checks (a payload that does not decrypt, a missing answer field), counted by
/// goose as a transaction error.
pub(crate) fn failure(message: impl Into<String>) -> Failure {
    Box::new(TransactionError::Custom(message.into()))
}

/// One request of the API, as a simulated device sends it.
pub(crate) struct Call<'a, B: Serialize + ?Sized = ()> {
    pub method: GooseMethod,
    /// A path after `--host`, or the absolute URL the server signed (blob URLs on an S3 store).
    pub path: &'a str,
    /// The request's name in goose's reports, after its method.
    pub name: &'a str,
    pub token: Option<&'a str>,
    pub json: Option<&'a B>,
    /// Longer than goose's `--timeout` (an event stream is held for the whole run).
    pub timeout: Option<Duration>,
}

impl<'a> Call<'a> {
    pub fn new(method: GooseMethod, path: &'a str, name: &'a str) -> Self {
        Self { method, path, name, token: None, json: None, timeout: None }
    }
}

impl<'a, B: Serialize + ?Sized> Call<'a, B> {
    pub fn token(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn json<J: Serialize + ?Sized>(self, json: &'a J) -> Call<'a, J> {
        let Call { method, path, name, token, timeout, .. } = self;
        Call { method, path, name, token, json: Some(json), timeout }
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends it with `user`'s client; a status other than 2xx fails the transaction with the server's error body,
    /// which goose then shows (`POST push: 429 Too Many Requests: {"error": …}`).
    pub async fn send(self, user: &mut GooseUser) -> Result<GooseResponse, Failure> {
        self.send_with(user, |builder| builder).await
    }

    /// [`send`](Self::send) after `adjust` had the request builder (headers, a raw body).
    pub async fn send_with(
        self,
        user: &mut GooseUser,
        adjust: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<GooseResponse, Failure> {
        let mut builder = user.get_request_builder(&self.method, self.path)?;
        if let Some(token) = self.token {
            builder = builder.bearer_auth(token);
        }
        if let Some(json) = self.json {
            builder = builder.json(json);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        let request =
            GooseRequest::builder().method(self.method).name(self.name).set_request_builder(adjust(builder)).build();
        let goose = user.request(request).await?;
        if goose.request.success {
            return Ok(goose);
        }
        let what = match goose.response {
            Ok(response) => {
                let status = response.status();
                format!("{status}: {}", response.text().await.unwrap_or_default().trim())
            }
            Err(e) => e.to_string(),
        };
        Err(failure(format!("{} {}: {what}", method_name(&self.method), self.name)))
    }

    /// Sends it and decodes the JSON answer.
    pub async fn call<T: DeserializeOwned>(self, user: &mut GooseUser) -> Result<T, Failure> {
        let name = self.name;
        let goose = self.send(user).await?;
        json(user, goose, name).await
    }
}

/// The JSON body of a successful answer; a body that is not the expected JSON marks the request failed.
pub(crate) async fn json<T: DeserializeOwned>(
    user: &mut GooseUser,
    goose: GooseResponse,
    name: &str,
) -> Result<T, Failure> {
    let GooseResponse { mut request, response } = goose;
    let body = match response {
        Ok(response) => response.bytes().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match body.and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())) {
        Ok(value) => Ok(value),
        Err(e) => {
            let tag = format!("{name}: unexpected answer: {e}");
            // Marks the request failed in goose's counts, and fails the transaction with it.
            Err(user.set_failure(&tag, &mut request, None, None).expect_err("set_failure fails the transaction"))
        }
    }
}

/// The response of a successful [`GooseResponse`], taken out of it.
pub(crate) fn response(goose: GooseResponse) -> Result<Response, Failure> {
    goose.response.map_err(|e| Box::new(TransactionError::Reqwest(e)))
}

fn method_name(method: &GooseMethod) -> &'static str {
    match method {
        GooseMethod::Delete => "DELETE",
        GooseMethod::Get => "GET",
        GooseMethod::Head => "HEAD",
        GooseMethod::Patch => "PATCH",
        GooseMethod::Post => "POST",
        GooseMethod::Put => "PUT",
        GooseMethod::Custom => "CUSTOM",
    }
}
