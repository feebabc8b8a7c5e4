//! Bearer tokens: issued by the auth service, verified by every service.
//!
//! HS256 is the only algorithm accepted (the header's `alg` is never trusted); `iss`, `aud` and `exp` are required
//! and checked. Each token carries its user's token version: a password change bumps the version, which revokes
//! every token issued before it.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use synckit_protocol::ErrorCode;
use synckit_store::{AccountStore, StreamId};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ApiError;

const ISSUER: &str = "synckit";
const AUDIENCE: &str = "synckit-sync";
/// How long a token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::days(7);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: Uuid,
    /// The app.
    app: Uuid,
    /// The user's token version when the token was issued.
    tv: u64,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub token_version: u64,
}

/// The deployment's signing key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

/// A token signing secret too short to be safe.
#[derive(Debug)]
pub struct ShortSecret(usize);

impl std::fmt::Display for ShortSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the token signing secret is {} bytes; it must be at least 32", self.0)
    }
}

impl std::error::Error for ShortSecret {}

impl TokenKeys {
    /// Keys from a shared secret, which must be at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, ShortSecret> {
        if secret.len() < 32 {
            return Err(ShortSecret(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation })
    }

    /// A token for `user_id` in `app_id`, and when it expires.
    pub fn issue(&self, claims: TokenClaims) -> (String, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let expires_at = (now + TOKEN_LIFETIME).replace_nanosecond(0).expect("0 is a valid nanosecond");
        let claims = Claims {
            sub: claims.user_id,
            app: claims.app_id,
            tv: claims.token_version,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail");
        (token, expires_at)
    }

    /// The claims of a well-signed, unexpired token of this deployment. Revocation is checked by
    /// [`Authenticator`], which can see the store.
    pub fn verify(&self, token: &str) -> Result<TokenClaims, ApiError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => {
                Ok(TokenClaims { user_id: data.claims.sub, app_id: data.claims.app, token_version: data.claims.tv })
            }
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(ApiError::new(ErrorCode::TokenExpired, "the token has expired; authenticate again"))
            }
            Err(_) => Err(invalid_token()),
        }
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, "the token is not valid for this server")
}

/// Verifies tokens against the keys and the store: services put one in their state.
#[derive(Clone, Debug)]
pub struct Authenticator {
    pub keys: Arc<TokenKeys>,
    pub accounts: Arc<dyn AccountStore>,
}

impl Authenticator {
    /// The claims of a valid token whose user still exists and has not changed password since it was issued.
    pub async fn authenticate(&self, token: &str) -> Result<TokenClaims, ApiError> {
        let claims = self.keys.verify(token)?;
        match self.accounts.user(claims.user_id).await? {
            Some(user) if user.token_version == claims.token_version => Ok(claims),
            Some(_) => Err(ApiError::new(ErrorCode::InvalidToken, "the token was revoked by a password change")),
            None => Err(invalid_token()),
        }
    }
}

/// The caller, from `Authorization: Bearer <token>`. Its stream is the only one a handler may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub token_version: u64,
}

impl Authenticated {
    /// The caller's (app, user) stream.
    pub fn stream(&self) -> StreamId {
        StreamId { app_id: self.app_id, user_id: self.user_id }
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::new(ErrorCode::MissingToken, "send Authorization: Bearer <token>"))?;
        // The scheme name is case-insensitive (RFC 9110).
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| ApiError::new(ErrorCode::MissingToken, "the Authorization header must be Bearer <token>"))?;
        let claims = Authenticator::from_ref(state).authenticate(token.trim()).await?;
        Ok(Self { user_id: claims.user_id, app_id: claims.app_id, token_version: claims.token_version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = TokenKeys::new(&[1; 32]).unwrap();
        let claims = TokenClaims { user_id: Uuid::now_v7(), app_id: Uuid::now_v7(), token_version: 3 };
        let (token, expires_at) = keys.issue(claims);
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert!(expires_at > OffsetDateTime::now_utc() + Duration::days(6));

        // Another deployment's key.
        let err = TokenKeys::new(&[2; 32]).unwrap().verify(&token).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
        // A tampered payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": Uuid::now_v7(), "app": claims.app_id, "tv": 3, "iss": ISSUER, "aud": AUDIENCE, "exp": i64::MAX / 2}),
            &EncodingKey::from_secret(&[2; 32]),
        )
        .unwrap();
        let forged_payload = forged.split('.').nth(1).unwrap();
        parts[1] = forged_payload;
        assert_eq!(keys.verify(&parts.join(".")).unwrap_err().code, ErrorCode::InvalidToken);
        // An unsigned token ("alg": "none").
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
        assert_eq!(keys.verify(&none).unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            TokenKeys::new(&[1; 31]).unwrap_err().to_string(),
            "the token signing secret is 31 bytes; it must be at least 32"
        );
    }

    #[test]
    fn expired_tokens_say_so() {
        let keys = TokenKeys::new(&[1; 32]).unwrap();
        let past = OffsetDateTime::now_utc() - Duration::hours(1);
        let claims = Claims {
            sub: Uuid::now_v7(),
            app: Uuid::now_v7(),
            tv: 0,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: past.unix_timestamp() - 10,
            exp: past.unix_timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify(&token).unwrap_err().code, ErrorCode::TokenExpired);
    }
}
