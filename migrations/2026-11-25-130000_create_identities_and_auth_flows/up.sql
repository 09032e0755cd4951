-- A person is one identity at one provider: (provider, subject). A user may have several.
CREATE TABLE identities (
    id         text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   text        NOT NULL CHECK (char_length(provider) BETWEEN 1 AND 50),
    subject    text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
    -- The address the provider gave at the last sign-in, kept for the record only: accounts
    -- are never found by it.
    email      text        CHECK (char_length(email) <= 320),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identities_provider_subject_key UNIQUE (provider, subject)
);

CREATE INDEX identities_user_id_idx ON identities (user_id);

-- Every existing user signed up through exactly one identity.
INSERT INTO identities (id, user_id, provider, subject, email, created_at)
SELECT 'identity_' || gen_random_uuid(), id, provider, provider_id, email, created_at
FROM users;

-- Whether the user set their name or picture themselves (updateMe): sign-ins then leave them.
ALTER TABLE users
    ADD COLUMN name_set_by_user    boolean NOT NULL DEFAULT false,
    ADD COLUMN picture_set_by_user boolean NOT NULL DEFAULT false;

-- Sign-ins started in a browser and not finished yet. Single use: the callback deletes the row.
-- Only hashes of the state and of the browser-binding cookie are kept.
CREATE TABLE auth_flows (
    state_hash    text        PRIMARY KEY CHECK (char_length(state_hash) = 64),
    provider      text        NOT NULL CHECK (char_length(provider) BETWEEN 1 AND 50),
    nonce         text        NOT NULL CHECK (char_length(nonce) BETWEEN 1 AND 255),
    pkce_verifier text        NOT NULL CHECK (char_length(pkce_verifier) BETWEEN 43 AND 128),
    redirect_to   text        CHECK (char_length(redirect_to) <= 2048),
    binding_hash  text        NOT NULL CHECK (char_length(binding_hash) = 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

CREATE INDEX auth_flows_expires_at_idx ON auth_flows (expires_at);
