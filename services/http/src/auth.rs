//! Bearer tokens: issued by the auth service, verified by every service.
//!
//! HS256 is the only algorithm accepted (the header's `alg` is never trusted); `iss`, `aud` and `exp` are required
//! and checked. Each token carries its user's token version: a password change bumps the version, which revokes
//! every token issued before it.
//!
//! An app's tokens are of two kinds: a sign-in token, bound to no device and short-lived, which can only set up
//! (register a device, read or store the key envelope, manage devices and the password); and a device's token, which
//! the device registration answers, lives seven days and acts only as its device. Removing the device revokes its
//! token, and deleting the app every token of it: the check of every request reads the device and app rows (with the
//! token version, in one indexed lookup), so it holds at once on every instance of a deployment, with no list of
//! revoked tokens to share.
//!
//! A console token ([`AuthenticatedAccount`]) is of the account alone, in no app: it manages the apps the account
//! owns (`/api/apps`) and nothing else. It has an audience of its own, so an app's token is never taken for one, nor
//! one for an app's token.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use synckit_protocol::ErrorCode;
use synckit_store::{AccountStore, StreamId};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::ApiError;
use crate::keys::{KeyRing, ShortSecret};

const ISSUER: &str = "synckit";
/// The audience of an app's tokens.
const AUDIENCE: &str = "synckit-sync";
/// The audience of console tokens.
const CONSOLE_AUDIENCE: &str = "synckit-console";
/// How long a device's token is valid.
pub const DEVICE_TOKEN_LIFETIME: Duration = Duration::days(7);
/// How long a sign-in token is valid: enough to set up encryption and register a device, and short because it is
/// revoked by nothing but a password change.
pub const SIGN_IN_TOKEN_LIFETIME: Duration = Duration::minutes(15);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: Uuid,
    /// The app.
    app: Uuid,
    /// The user's token version when the token was issued.
    tv: u64,
    /// The device the token is bound to; absent on a sign-in token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<Uuid>,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// A console token's claims: an account, no app.
#[derive(Debug, Serialize, Deserialize)]
struct ConsoleClaims {
    /// The user.
    sub: Uuid,
    /// The user's token version when the token was issued.
    tv: u64,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub token_version: u64,
    /// The device the token acts as; `None` for a sign-in token.
    pub device_id: Option<Uuid>,
}

/// The deployment's token keys: the current one signs, previous ones still verify (see [`KeyRing`]).
pub struct TokenKeys {
    /// The current key's id, written as the `kid` of every token, and the key.
    signing: (String, EncodingKey),
    /// Every key by id, the current one first.
    verifying: Vec<(String, DecodingKey)>,
    /// An app's tokens.
    validation: Validation,
    /// Console tokens.
    console_validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.verifying.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("TokenKeys").field("signing", &self.signing.0).field("verifying", &ids).finish()
    }
}

impl TokenKeys {
    /// Keys from one shared secret, which must be at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self, ShortSecret> {
        Ok(Self::from_ring(&KeyRing::new(secret, [])?))
    }

    /// Keys that sign with the ring's current key and verify with any of its keys.
    pub fn from_ring(ring: &KeyRing) -> Self {
        let validation = |audience: &str| {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = 5;
            validation
        };
        let current = ring.current();
        Self {
            signing: (current.id().to_owned(), EncodingKey::from_secret(current.secret())),
            verifying: ring.keys().iter().map(|k| (k.id().to_owned(), DecodingKey::from_secret(k.secret()))).collect(),
            validation: validation(AUDIENCE),
            console_validation: validation(CONSOLE_AUDIENCE),
        }
    }

    /// A token with these claims, and when it expires: [`DEVICE_TOKEN_LIFETIME`] from now for a device's token,
    /// [`SIGN_IN_TOKEN_LIFETIME`] for a sign-in token.
    pub fn issue(&self, claims: TokenClaims) -> (String, OffsetDateTime) {
        let lifetime = if claims.device_id.is_some() { DEVICE_TOKEN_LIFETIME } else { SIGN_IN_TOKEN_LIFETIME };
        let expires_at = (OffsetDateTime::now_utc() + lifetime).replace_nanosecond(0).expect("0 is a valid nanosecond");
        (self.issue_until(claims, expires_at), expires_at)
    }

    /// A token with these claims that expires at `expires_at`.
    fn issue_until(&self, claims: TokenClaims, expires_at: OffsetDateTime) -> String {
        self.sign(&Claims {
            sub: claims.user_id,
            app: claims.app_id,
            tv: claims.token_version,
            dev: claims.device_id,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: OffsetDateTime::now_utc().unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        })
    }

    /// A console token of the user at `token_version`, and when it expires: [`SIGN_IN_TOKEN_LIFETIME`] from now, as
    /// short as an app's sign-in token, since only a password change revokes either.
    pub fn issue_console(&self, user_id: Uuid, token_version: u64) -> (String, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        let expires_at = (now + SIGN_IN_TOKEN_LIFETIME).replace_nanosecond(0).expect("0 is a valid nanosecond");
        let token = self.sign(&ConsoleClaims {
            sub: user_id,
            tv: token_version,
            iss: ISSUER.into(),
            aud: CONSOLE_AUDIENCE.into(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        });
        (token, expires_at)
    }

    /// `claims` signed with the current key, which the header names.
    fn sign(&self, claims: &impl Serialize) -> String {
        let header = Header { kid: Some(self.signing.0.clone()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, claims, &self.signing.1).expect("HS256 signing cannot fail")
    }

    /// The claims of a well-signed, unexpired app's token of this deployment, and when it expires. Revocation is
    /// checked by [`Authenticator`], which can see the store.
    pub fn verify(&self, token: &str) -> Result<(TokenClaims, OffsetDateTime), ApiError> {
        let c: Claims = self.decode(token, &self.validation)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(c.exp).map_err(|_| invalid_token())?;
        Ok((TokenClaims { user_id: c.sub, app_id: c.app, token_version: c.tv, device_id: c.dev }, expires_at))
    }

    /// The user and token version of a well-signed, unexpired console token of this deployment, and when it expires.
    pub fn verify_console(&self, token: &str) -> Result<(Uuid, u64, OffsetDateTime), ApiError> {
        let c: ConsoleClaims = self.decode(token, &self.console_validation)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(c.exp).map_err(|_| invalid_token())?;
        Ok((c.sub, c.tv, expires_at))
    }

    /// The user a well-signed, unexpired token of either kind is of.
    pub fn user_of(&self, token: &str) -> Option<Uuid> {
        match self.verify(token) {
            Ok((claims, _)) => Some(claims.user_id),
            Err(_) => self.verify_console(token).ok().map(|(user_id, _, _)| user_id),
        }
    }

    /// The claims of a token that one of the keys signed and that `validation` (its audience, issuer and expiry)
    /// accepts.
    ///
    /// The token's `kid` picks the key; a token with an unknown `kid` is refused without trying any. A token
    /// without one was issued before tokens named their key, and is tried against each key.
    fn decode<C: DeserializeOwned>(&self, token: &str, validation: &Validation) -> Result<C, ApiError> {
        let kid = jsonwebtoken::decode_header(token).map_err(|_| invalid_token())?.kid;
        let keys = self.verifying.iter().filter(|(id, _)| kid.as_ref().is_none_or(|kid| kid == id));
        for (_, key) in keys {
            match jsonwebtoken::decode::<C>(token, key, validation) {
                Ok(data) => return Ok(data.claims),
                // The signature is checked first: any other error means this key signed it.
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                    return Err(ApiError::new(ErrorCode::TokenExpired, "the token has expired; authenticate again"));
                }
                Err(_) => return Err(invalid_token()),
            }
        }
        Err(invalid_token())
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, "the token is not valid for this server")
}

fn revoked() -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, "the token was revoked by a password change")
}

/// Verifies tokens against the keys and the store: services put one in their state.
#[derive(Clone, Debug)]
pub struct Authenticator {
    pub keys: Arc<TokenKeys>,
    pub accounts: Arc<dyn AccountStore>,
}

impl Authenticator {
    /// The caller a valid, unrevoked token names.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, ApiError> {
        let (claims, expires_at) = self.keys.verify(token)?;
        let caller = Authenticated {
            user_id: claims.user_id,
            app_id: claims.app_id,
            token_version: claims.token_version,
            device_id: claims.device_id,
            expires_at,
        };
        self.check(&caller).await?;
        Ok(caller)
    }

    /// The account a valid, unrevoked console token names.
    pub async fn authenticate_account(&self, token: &str) -> Result<AuthenticatedAccount, ApiError> {
        let (user_id, token_version, expires_at) = self.keys.verify_console(token)?;
        match self.accounts.user(user_id).await? {
            None => Err(invalid_token()),
            Some(user) if user.token_version != token_version => Err(revoked()),
            Some(_) => Ok(AuthenticatedAccount { user_id, token_version, expires_at }),
        }
    }

    /// Whether a caller authenticated earlier still is: its token unexpired and still standing. What outlives one
    /// request on one token (an event stream) calls it again.
    pub async fn check(&self, caller: &Authenticated) -> Result<(), ApiError> {
        if OffsetDateTime::now_utc() >= caller.expires_at {
            return Err(ApiError::new(ErrorCode::TokenExpired, "the token has expired; authenticate again"));
        }
        self.check_standing(caller.stream(), caller.device_id, caller.token_version).await
    }

    /// Whether a token of `stream`, issued at `token_version` and bound to `device_id`, is still standing: the user
    /// exists, has not changed password since, and still has the device, and the app exists. One indexed read of the
    /// store.
    pub async fn check_standing(
        &self,
        stream: StreamId,
        device_id: Option<Uuid>,
        token_version: u64,
    ) -> Result<(), ApiError> {
        match self.accounts.token_standing(stream, device_id).await? {
            None => Err(invalid_token()),
            Some(s) if s.token_version != token_version => Err(revoked()),
            Some(s) if !s.app_exists => Err(ApiError::new(ErrorCode::InvalidToken, "the token's app was deleted")),
            Some(s) if device_id.is_some() && !s.device_registered => Err(ApiError::new(
                ErrorCode::DeviceRemoved,
                "this device was removed from the account; sign in again and register it",
            )),
            Some(_) => Ok(()),
        }
    }
}

/// The token of `Authorization: Bearer <token>`, the scheme name in any case (RFC 9110).
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::new(ErrorCode::MissingToken, "send Authorization: Bearer <token>"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| ApiError::new(ErrorCode::MissingToken, "the Authorization header must be Bearer <token>"))
}

/// An account signed in to the console (`POST /api/accounts/console-auth`), in no app: what `/api/apps` takes. An
/// app's token (sign-in or device) is refused here with 401 `invalid_token`, as a console token is everywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedAccount {
    pub user_id: Uuid,
    pub token_version: u64,
    pub expires_at: OffsetDateTime,
}

impl<S> FromRequestParts<S> for AuthenticatedAccount
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Authenticator::from_ref(state).authenticate_account(bearer(parts)?).await
    }
}

/// The caller, from `Authorization: Bearer <token>`: a sign-in token or a device's. Its stream is the only one a
/// handler may touch. Routes that act as a device take [`AuthenticatedDevice`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub token_version: u64,
    /// The device the token is bound to; `None` for a sign-in token.
    pub device_id: Option<Uuid>,
    pub expires_at: OffsetDateTime,
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
        Authenticator::from_ref(state).authenticate(bearer(parts)?).await
    }
}

/// A caller with a device's token: what push, pull, status, events and blobs need. A sign-in token is refused with
/// 403 `device_token_required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticatedDevice {
    pub user_id: Uuid,
    pub app_id: Uuid,
    pub device_id: Uuid,
    /// The whole token, to check again later.
    pub token: Authenticated,
}

impl AuthenticatedDevice {
    /// The caller's (app, user) stream.
    pub fn stream(&self) -> StreamId {
        self.token.stream()
    }
}

impl<S> FromRequestParts<S> for AuthenticatedDevice
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = Authenticated::from_request_parts(parts, state).await?;
        let device_id = token.device_id.ok_or_else(|| {
            ApiError::new(
                ErrorCode::DeviceTokenRequired,
                "this is a sign-in token; register a device (POST /api/sync/devices) and use the token it answers",
            )
        })?;
        Ok(Self { user_id: token.user_id, app_id: token.app_id, device_id, token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = TokenKeys::new(&[1; 32]).unwrap();
        let claims = TokenClaims { user_id: Uuid::now_v7(), app_id: Uuid::now_v7(), token_version: 3, device_id: None };
        let (token, expires_at) = keys.issue(claims);
        assert_eq!(keys.verify(&token).unwrap(), (claims, expires_at));
        // A sign-in token is short-lived; a device's lasts days.
        assert!(expires_at <= OffsetDateTime::now_utc() + SIGN_IN_TOKEN_LIFETIME);
        let device = TokenClaims { device_id: Some(Uuid::now_v7()), ..claims };
        let (device_token, device_expiry) = keys.issue(device);
        assert_eq!(keys.verify(&device_token).unwrap(), (device, device_expiry));
        assert!(device_expiry > OffsetDateTime::now_utc() + Duration::days(6));

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
        assert_eq!(TokenKeys::new(&[1; 31]).unwrap_err(), ShortSecret(31));
    }

    /// A console token is never an app's token, nor the other way round, though one key signs both.
    #[test]
    fn console_tokens_and_app_tokens_are_not_interchangeable() {
        let keys = TokenKeys::new(&[1; 32]).unwrap();
        let user_id = Uuid::now_v7();
        let (console, expires_at) = keys.issue_console(user_id, 4);
        assert_eq!(keys.verify_console(&console).unwrap(), (user_id, 4, expires_at));
        assert!(expires_at <= OffsetDateTime::now_utc() + SIGN_IN_TOKEN_LIFETIME);
        assert_eq!(keys.verify(&console).unwrap_err().code, ErrorCode::InvalidToken);

        let claims = TokenClaims { user_id, app_id: Uuid::now_v7(), token_version: 4, device_id: None };
        for claims in [claims, TokenClaims { device_id: Some(Uuid::now_v7()), ..claims }] {
            let (app_token, _) = keys.issue(claims);
            assert_eq!(keys.verify_console(&app_token).unwrap_err().code, ErrorCode::InvalidToken);
            assert_eq!(keys.user_of(&app_token), Some(user_id));
        }
        assert_eq!(keys.user_of(&console), Some(user_id), "the memory budget counts both as the user's");
        assert_eq!(keys.user_of("garbage"), None);
    }

    #[test]
    fn previous_keys_verify_after_a_rotation_and_unknown_ones_do_not() {
        let claims = TokenClaims { user_id: Uuid::now_v7(), app_id: Uuid::now_v7(), token_version: 0, device_id: None };
        let (old, new, stranger) = ([1; 32], [2; 32], [3; 32]);
        let (before, _) = TokenKeys::new(&old).unwrap().issue(claims);
        let rotated = TokenKeys::from_ring(&KeyRing::new(&new, [old.as_slice()]).unwrap());

        // The header names the key, by an id that is not the key.
        let header = jsonwebtoken::decode_header(&before).unwrap();
        assert_eq!(header.kid.as_deref(), Some(KeyRing::new(&old, []).unwrap().current().id()));
        assert_eq!(rotated.verify(&before).unwrap().0, claims, "the previous key still verifies");
        let (after, _) = rotated.issue(claims);
        assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(rotated.signing.0.as_str()));
        assert_eq!(rotated.verify(&after).unwrap().0, claims);

        // Once the previous key is dropped, what it signed is refused; so is another deployment's token.
        let retired = TokenKeys::new(&new).unwrap();
        assert_eq!(retired.verify(&before).unwrap_err().code, ErrorCode::InvalidToken);
        let (foreign, _) = TokenKeys::new(&stranger).unwrap().issue(claims);
        assert_eq!(rotated.verify(&foreign).unwrap_err().code, ErrorCode::InvalidToken);
        // A forger cannot pick the key by naming a known id on a token signed with another key.
        let forged_header = Header { kid: Some(rotated.signing.0.clone()), ..Header::new(Algorithm::HS256) };
        let exp = (OffsetDateTime::now_utc() + Duration::hours(1)).unix_timestamp();
        let body = serde_json::json!({"sub": claims.user_id, "app": claims.app_id, "tv": 0, "iss": ISSUER, "aud": AUDIENCE, "iat": 0, "exp": exp});
        let forged = jsonwebtoken::encode(&forged_header, &body, &EncodingKey::from_secret(&stranger)).unwrap();
        assert_eq!(rotated.verify(&forged).unwrap_err().code, ErrorCode::InvalidToken);
        // Tokens from before keys had ids are tried against every key.
        let legacy =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &body, &EncodingKey::from_secret(&old)).unwrap();
        assert_eq!(rotated.verify(&legacy).unwrap().0.user_id, claims.user_id);
    }

    #[test]
    fn expired_tokens_say_so() {
        let keys = TokenKeys::new(&[1; 32]).unwrap();
        let past = OffsetDateTime::now_utc() - Duration::hours(1);
        let claims = Claims {
            sub: Uuid::now_v7(),
            app: Uuid::now_v7(),
            tv: 0,
            dev: None,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: past.unix_timestamp() - 10,
            exp: past.unix_timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.signing.1).unwrap();
        assert_eq!(keys.verify(&token).unwrap_err().code, ErrorCode::TokenExpired);
    }
}
