//! The OpenAPI document, assembled from the services' own annotations and served at `/api/openapi.json`.
//!
//! Handlers document what they answer themselves. What every operation of a kind can answer comes from the layers
//! and extractors they share (the JSON body, the token, the request deadline, the database), so [`common`] adds it
//! to every operation here, in one place, instead of each handler repeating it and one of them forgetting.
//!
//! Error responses are described as a Markdown list of their codes, one "- `code`: why" line each; the tests below
//! check that every code listed under a status is one the protocol answers with that status.

use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};
use synckit_protocol::{ErrorCode, paths};
use utoipa::openapi::InfoBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The security scheme of endpoints that take any token, a sign-in token or a device's.
pub const BEARER: &str = "bearer";
/// The security scheme of endpoints that act as a device, and so need a device's token.
pub const DEVICE: &str = "device";
/// The security scheme of the endpoints that manage apps, which take a console token and no other.
pub const CONSOLE: &str = "console";

/// The whole API of a server running every role, as JSON.
pub fn openapi() -> Value {
    use utoipa::OpenApi as _;
    let mut doc = synckit_auth::ApiDoc::openapi();
    doc.merge(synckit_ingest::ApiDoc::openapi());
    doc.merge(synckit_query::ApiDoc::openapi());
    doc.merge(synckit_blob::ApiDoc::openapi());
    doc.info = InfoBuilder::new()
        .title("SyncKit")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "End-to-end encrypted sync. Payloads, envelopes and blob contents are ciphertext the server cannot read. \
             Errors are {\"error\": {\"code\", \"message\"}}; each error response lists the codes it can carry. \
             See docs/protocol.md.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    let token = |description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(description))
                .build(),
        )
    };
    components.add_security_scheme(BEARER, token("a sign-in token (`POST /api/sync/auth`) or a device's token"));
    components.add_security_scheme(DEVICE, token("a device's token (`POST /api/sync/devices`)"));
    components.add_security_scheme(
        CONSOLE,
        token("a console token (`POST /api/accounts/console-auth`): an account's, in no app; no other token will do"),
    );
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    common::add(&mut doc);
    doc
}

pub(crate) fn router() -> Router {
    let doc = serde_json::to_string(&openapi()).expect("the OpenAPI document serialises");
    Router::new().route(
        paths::OPENAPI,
        get(move || {
            let doc = doc.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc) }
        }),
    )
}

/// The error responses every operation of a kind can answer.
mod common {
    use super::*;

    /// What an operation is, as far as the shared layers are concerned.
    struct Kind {
        body: bool,
        /// A form-encoded body (the OAuth token endpoint), whose malformed requests are answered in RFC 6749's
        /// shape by the handler, not by the shared JSON extractor.
        form: bool,
        token: bool,
        device: bool,
        /// A console token's: no device to be removed.
        console: bool,
    }

    /// Whether a common answer applies to an operation of this kind.
    type Applies = fn(&Kind) -> bool;

    /// (to which operations, code, why) for every answer a shared layer or extractor gives; the code places it
    /// under its status.
    const COMMON: &[(Applies, ErrorCode, &str)] = &[
        (|k| k.body && !k.form, ErrorCode::InvalidJson, "the body is not JSON"),
        (
            |k| k.body && !k.form,
            ErrorCode::InvalidRequest,
            "the body is JSON but not of this schema (a missing, unknown or mistyped field, bad base64, a value \
             out of range)",
        ),
        (
            |k| k.body,
            ErrorCode::BodyTooLarge,
            "the body is larger than this endpoint accepts (docs/protocol.md, Limits)",
        ),
        (
            |k| k.body && !k.form,
            ErrorCode::UnsupportedMediaType,
            "the request did not say `Content-Type: application/json`",
        ),
        (|k| k.token, ErrorCode::MissingToken, "no `Authorization: Bearer` header"),
        (
            |k| k.token,
            ErrorCode::InvalidToken,
            "the token is malformed, forged, another deployment's, of another kind (an app's or the console's), \
             revoked by a password change, or of a deleted app",
        ),
        (|k| k.token, ErrorCode::TokenExpired, "the token has expired; authenticate again"),
        (
            |k| k.token && !k.console,
            ErrorCode::DeviceRemoved,
            "the token's device was removed; sign in and register it again",
        ),
        (
            |k| k.device,
            ErrorCode::DeviceTokenRequired,
            "a sign-in token: register a device (`POST /api/sync/devices`) and use its token",
        ),
        (|_| true, ErrorCode::RequestTimeout, "the request was not completed within the server's deadline"),
        (
            |_| true,
            ErrorCode::RateLimited,
            "too many requests, or the server is at its capacity for this stream; wait `Retry-After` seconds",
        ),
        (|_| true, ErrorCode::Internal, "a bug or an unexpected failure on the server; the cause is logged"),
        (
            |_| true,
            ErrorCode::Unavailable,
            "the database or the blob store is unavailable, or the server is overloaded; wait `Retry-After` seconds",
        ),
    ];

    /// Adds the common responses to every operation of `doc`.
    pub(super) fn add(doc: &mut Value) {
        let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                let schemes: Vec<&str> = operation
                    .get("security")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .flat_map(|requirement| requirement.keys().map(String::as_str))
                    .collect();
                let kind = Kind {
                    body: operation.contains_key("requestBody"),
                    form: operation
                        .get("requestBody")
                        .is_some_and(|body| body["content"].get("application/x-www-form-urlencoded").is_some()),
                    token: !schemes.is_empty(),
                    device: schemes.contains(&DEVICE),
                    console: schemes.contains(&CONSOLE),
                };
                let responses = operation.entry("responses").or_insert_with(|| json!({}));
                let responses = responses.as_object_mut().expect("responses are an object");
                for (applies, code, why) in COMMON {
                    if applies(&kind) {
                        add_code(responses, *code, why);
                    }
                }
            }
        }
    }

    /// Lists `code` under its status, creating the response if the handler did not document that status.
    fn add_code(responses: &mut Map<String, Value>, code: ErrorCode, why: &str) {
        let status = code.http_status();
        let response = responses.entry(status.to_string()).or_insert_with(|| {
            json!({
                "description": "",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            })
        });
        let response = response.as_object_mut().expect("a response is an object");
        let description = response.get("description").and_then(Value::as_str).unwrap_or_default();
        if !description.contains(&format!("`{code}`")) {
            let line = format!("- `{code}`: {why}");
            let description = if description.is_empty() { line } else { format!("{}\n{line}", description.trim_end()) };
            response.insert("description".into(), description.into());
        }
        if status == 429 || status == 503 {
            let headers = response.entry("headers").or_insert_with(|| json!({}));
            headers.as_object_mut().expect("headers are an object").insert(
                "Retry-After".into(),
                json!({
                    "description": "seconds to wait before trying again",
                    "required": true,
                    "schema": {"type": "integer", "minimum": 1},
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn operations(doc: &Value) -> Vec<(String, &Map<String, Value>)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                found.push((format!("{} {path}", method.to_uppercase()), operation.as_object().expect("operation")));
            }
        }
        found
    }

    /// The codes an error response's description lists.
    fn listed_codes(response: &Value) -> BTreeSet<String> {
        let description = response["description"].as_str().unwrap_or_default();
        description
            .lines()
            .filter_map(|line| line.strip_prefix("- `"))
            .filter_map(|line| line.split_once('`'))
            .map(|(code, _)| code.to_owned())
            .collect()
    }

    #[test]
    fn every_operation_lists_what_the_shared_layers_answer() {
        let doc = openapi();
        let operations = operations(&doc);
        assert_eq!(operations.len(), 35, "every operation of the API is checked");
        for (name, operation) in operations {
            let responses = operation["responses"].as_object().expect("responses");
            let codes = |status: &str| listed_codes(&responses.get(status).cloned().unwrap_or_default());
            let has = |status: &str, code: &str| codes(status).contains(code);
            let schemes: Vec<String> = operation
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|r| r.as_object().unwrap().keys().cloned())
                .collect();
            for (status, code) in
                [("408", "request_timeout"), ("429", "rate_limited"), ("500", "internal"), ("503", "unavailable")]
            {
                assert!(has(status, code), "{name}: {status} {code}");
            }
            for status in ["429", "503"] {
                assert_eq!(responses[status]["headers"]["Retry-After"]["required"], true, "{name}: {status}");
            }
            let form = name == format!("POST {}", paths::OAUTH_TOKEN);
            if operation.contains_key("requestBody") && !form {
                for (status, code) in [
                    ("400", "invalid_json"),
                    ("400", "invalid_request"),
                    ("413", "body_too_large"),
                    ("415", "unsupported_media_type"),
                ] {
                    assert!(has(status, code), "{name}: {status} {code}");
                }
            }
            if !schemes.is_empty() {
                for code in ["missing_token", "invalid_token", "token_expired"] {
                    assert!(has("401", code), "{name}: 401 {code}");
                }
            }
            let console = schemes.iter().any(|s| s == CONSOLE);
            assert_eq!(console, name.contains(" /api/apps"), "{name}: the console token, and only it, manages apps");
            assert_eq!(!schemes.is_empty() && !console, has("401", "device_removed"), "{name}");
            assert_eq!(schemes.iter().any(|s| s == DEVICE), has("403", "device_token_required"), "{name}");
            // The account endpoints anyone may call have no token; every other one has.
            let public = [
                "POST /api/accounts/register",
                "POST /api/accounts/prelogin",
                "POST /api/accounts/recovery",
                "POST /api/accounts/recover",
                "POST /api/accounts/console-auth",
                "POST /api/sync/auth",
                "POST /api/sync/app",
                "POST /oauth/token",
            ];
            assert_eq!(schemes.is_empty(), public.contains(&name.as_str()), "{name}: security {schemes:?}");
        }
    }

    #[test]
    fn every_listed_code_exists_and_has_the_status_it_is_listed_under() {
        let doc = openapi();
        for (name, operation) in operations(&doc) {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    continue;
                }
                // The token endpoint's own refusals are RFC 6749's error body, which carries no API code.
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                if name == format!("POST {}", paths::OAUTH_TOKEN) && schema == "#/components/schemas/OAuthError" {
                    assert!(["400", "401"].contains(&status.as_str()), "{name} {status}");
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
                let codes = listed_codes(response);
                assert!(!codes.is_empty(), "{name} {status} lists no code: {}", response["description"]);
                for code in codes {
                    let known = ErrorCode::ALL.iter().find(|c| c.as_str() == code);
                    let known = known.unwrap_or_else(|| panic!("{name} {status}: `{code}` is no error code"));
                    assert_eq!(known.http_status().to_string(), *status, "{name}: `{code}` listed under {status}");
                }
            }
        }
    }

    /// Request bodies say what the server refuses: unknown fields, and sizes past the limits.
    #[test]
    fn request_schemas_carry_the_server_limits() {
        use synckit_protocol::limits::*;
        let doc = openapi();
        let schemas = &doc["components"]["schemas"];
        for (name, schema) in schemas.as_object().unwrap() {
            // The token request takes parameters it does not know, as RFC 6749 section 3.2 asks.
            if name == "TokenRequest" {
                continue;
            }
            if name.ends_with("Request") || ["PushEntry", "AppKeyRewrap", "RecoveredKey"].contains(&name.as_str()) {
                assert_eq!(schema["additionalProperties"], false, "{name} refuses unknown fields");
            }
        }
        let property = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
        assert_eq!(property("PushRequest", "entries")["maxItems"], MAX_PUSH_ENTRIES);
        assert_eq!(property("ChangePasswordRequest", "keys")["maxItems"], MAX_ACCOUNT_KEYS);
        assert_eq!(property("SetRecoveryKeyRequest", "keys")["maxItems"], MAX_ACCOUNT_KEYS);
        assert_eq!(property("RecoverRequest", "keys")["maxItems"], MAX_ACCOUNT_KEYS);
        assert_eq!(
            property("RecoveredKey", "recovery_envelope")["pattern"],
            synckit_protocol::base64_pattern(1, MAX_ENVELOPE_BYTES)
        );
        assert_eq!(property("PullRequest", "limit")["maximum"], MAX_PULL_LIMIT);
        assert_eq!(property("PullRequest", "limit")["minimum"], 1);
        assert_eq!(property("BlobUploadRequest", "size")["maximum"], MAX_BLOB_BYTES);
        assert_eq!(property("BlobConfirmRequest", "size")["maximum"], MAX_BLOB_BYTES);
        assert_eq!(property("RegisterDeviceRequest", "name")["maxLength"], MAX_DEVICE_FIELD_CHARS);
        assert_eq!(property("RegisterRequest", "email")["maxLength"], MAX_EMAIL_CHARS);
        assert_eq!(property("CreateAppRequest", "name")["maxLength"], MAX_APP_NAME_CHARS);
        for schema in ["CreateAppRequest", "RedirectUrisRequest"] {
            let uris = property(schema, "redirect_uris");
            assert_eq!(uris["maxItems"], MAX_REDIRECT_URIS, "{schema}");
            assert_eq!(uris["uniqueItems"], true, "{schema}");
            assert_eq!(uris["items"]["maxLength"], MAX_REDIRECT_URI_CHARS, "{schema}");
            assert_eq!(uris["items"]["pattern"], synckit_protocol::apps::REDIRECT_URI_PATTERN, "{schema}");
        }
        assert_eq!(property("RegisterRequest", "salt")["maxLength"], synckit_protocol::base64_len(LOGIN_SALT_BYTES));
        assert_eq!(
            property("PutKeyRequest", "envelope")["pattern"],
            synckit_protocol::base64_pattern(1, MAX_ENVELOPE_BYTES)
        );
        assert_eq!(property("PushEntry", "payload")["maxLength"], MAX_ENTRY_BYTES / 3 * 4);
        for required in [
            ("PullRequest", "cursor"),
            ("PushRequest", "entries"),
            ("PutKeyRequest", "envelope"),
            ("RedirectUrisRequest", "redirect_uris"),
        ] {
            let listed = schemas[required.0]["required"].as_array().unwrap();
            assert!(listed.iter().any(|f| f == required.1), "{required:?}");
        }
        for optional in [
            ("PullRequest", "limit"),
            ("PutKeyRequest", "expected_version"),
            ("ChangePasswordRequest", "keys"),
            ("CreateAppRequest", "redirect_uris"),
        ] {
            let listed = schemas[optional.0]["required"].as_array().unwrap();
            assert!(!listed.iter().any(|f| f == optional.1), "{optional:?}");
        }
    }
}
