//! The OpenAPI document, assembled from the services' own annotations and served at `/api/openapi.json`.

use axum::Router;
use axum::routing::get;
use synckit_protocol::paths;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};

/// The whole API of a server running every role.
pub fn openapi() -> OpenApi {
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
             Errors are {\"error\": {\"code\", \"message\"}}; see docs/protocol.md.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc
}

pub(crate) fn router() -> Router {
    let doc = openapi().to_json().expect("the OpenAPI document serialises");
    Router::new().route(
        paths::OPENAPI,
        get(move || {
            let doc = doc.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc) }
        }),
    )
}
