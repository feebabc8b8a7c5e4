-- OAuth authorization codes: each grant under the SHA-256 of its code (the code itself is not kept), from the
-- sign-in that issued it until it is redeemed, once, or expires about a minute later; deleted with its app or user.
CREATE TABLE oauth_codes (
    code_hash      bytea       PRIMARY KEY,
    app_id         uuid        NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   text        NOT NULL,
    code_challenge text        NOT NULL,
    token_version  bigint      NOT NULL,
    expires_at     timestamptz NOT NULL
);
-- Expired grants are swept by time.
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);
