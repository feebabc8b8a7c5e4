-- OAuth authorization codes (see migrations/postgres): each grant under the SHA-256 of its code, from the sign-in
-- that issued it until it is redeemed or expires; deleted with its app or user.
CREATE TABLE oauth_codes (
    code_hash      BLOB    PRIMARY KEY,
    app_id         BLOB    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id        BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    token_version  INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);
