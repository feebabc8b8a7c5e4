//! Request bodies, parsed as the server parses them: the services' `Json` extractor (serde_json over the protocol
//! types, binary fields as base64). The first byte picks the request type; the rest is the body.
//!
//! Checks: a body that is refused is refused with a 4xx protocol error, never a 5xx; a body that parses serialises,
//! and that serialisation parses again and serialises to the same bytes (what the server holds is what the body
//! said, with no field the round trip loses or invents).
#![no_main]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use synckit_http::Json;
use synckit_protocol::accounts::{
    AuthRequest, ChangePasswordRequest, ConsoleAuthRequest, PreloginRequest, RegisterRequest,
};
use synckit_protocol::apps::{CreateAppRequest, RedirectUrisRequest};
use synckit_protocol::blobs::{BlobConfirmRequest, BlobDownloadRequest, BlobUploadRequest};
use synckit_protocol::devices::RegisterDeviceRequest;
use synckit_protocol::keys::PutKeyRequest;
use synckit_protocol::recovery::{RecoverRequest, RecoveryRequest, SetRecoveryKeyRequest};
use synckit_protocol::sync::{PullRequest, PushRequest};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    // The numbering the seeds (examples/seeds.rs) use.
    match kind % 17 {
        0 => round_trip::<RegisterRequest>(body),
        1 => round_trip::<PreloginRequest>(body),
        2 => round_trip::<AuthRequest>(body),
        3 => round_trip::<ChangePasswordRequest>(body),
        4 => round_trip::<RegisterDeviceRequest>(body),
        5 => round_trip::<PutKeyRequest>(body),
        6 => round_trip::<PushRequest>(body),
        7 => round_trip::<PullRequest>(body),
        8 => round_trip::<BlobUploadRequest>(body),
        9 => round_trip::<BlobConfirmRequest>(body),
        10 => round_trip::<BlobDownloadRequest>(body),
        11 => round_trip::<SetRecoveryKeyRequest>(body),
        12 => round_trip::<RecoveryRequest>(body),
        13 => round_trip::<RecoverRequest>(body),
        14 => round_trip::<ConsoleAuthRequest>(body),
        15 => round_trip::<CreateAppRequest>(body),
        _ => round_trip::<RedirectUrisRequest>(body),
    }
});

fn round_trip<T: DeserializeOwned + Serialize>(body: &[u8]) {
    let Some(value) = extract::<T>(body) else { return };
    let first = serde_json::to_vec(&value).expect("a parsed body serialises");
    let again = extract::<T>(&first).expect("a body the server parsed parses again once re-serialised");
    let second = serde_json::to_vec(&again).expect("serialises");
    assert_eq!(first, second, "re-serialising a parsed body is not stable");
}

fn extract<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    let request = Request::builder()
        .method("POST")
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    match futures::executor::block_on(Json::<T>::from_request(request, &())) {
        Ok(Json(value)) => Some(value),
        Err(refused) => {
            let status = refused.into_response().status();
            assert!(status.is_client_error(), "a malformed body was answered with {status}");
            None
        }
    }
}
