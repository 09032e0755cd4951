-- One row per sign-in. Access tokens name their session (`sid`) and are refused once it has
-- ended (logout, reuse of a rotated refresh token) or expired (no refresh for the refresh-token
-- lifetime). `identity_id` is for the identity the sign-in used, once identities have a table.
CREATE TABLE sessions (
    id           text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider     text        NOT NULL CHECK (char_length(provider) BETWEEN 1 AND 50),
    identity_id  text        CHECK (char_length(identity_id) BETWEEN 1 AND 255),
    user_agent   text        CHECK (char_length(user_agent) BETWEEN 1 AND 512),
    ip           inet,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);

-- A user's sessions not yet ended, newest first: mySessions, logoutAll.
CREATE INDEX sessions_user_open_idx ON sessions (user_id, created_at DESC, id DESC)
    WHERE ended_at IS NULL;
-- The background purge of expired sessions.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Every refresh token a session was given, by SHA-256 hash; the tokens themselves are never
-- stored. The current one has no `rotated_at`; rotated ones stay so that presenting one again is
-- recognised as reuse, which ends the session.
CREATE TABLE refresh_tokens (
    hash       bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    session_id text        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);

-- At most one current refresh token per session.
CREATE UNIQUE INDEX refresh_tokens_current_key ON refresh_tokens (session_id)
    WHERE rotated_at IS NULL;
-- Deleting a session deletes its tokens.
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
