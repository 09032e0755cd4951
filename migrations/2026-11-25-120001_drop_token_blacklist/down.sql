-- Revoked access tokens, by JWT id. A row is useless once the token has expired,
-- so `expires_at` lets expired rows be purged.
CREATE TABLE token_blacklist (
    jti        text        PRIMARY KEY CHECK (char_length(jti) BETWEEN 1 AND 255),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX token_blacklist_expires_at_idx ON token_blacklist (expires_at);
