-- Keeps `updated_at` current on every UPDATE, whichever code path issues it.
CREATE FUNCTION festapi_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id             text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    email          text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320 AND email LIKE '_%@_%'),
    name           text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100 AND name ~ '\S'),
    picture        text        CHECK (char_length(picture) <= 2048 AND picture ~ '^https?://'),
    verified_email boolean     NOT NULL DEFAULT false,
    provider       text        NOT NULL CHECK (char_length(provider) BETWEEN 1 AND 50),
    provider_id    text        NOT NULL CHECK (char_length(provider_id) BETWEEN 1 AND 255),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_provider_identity_key UNIQUE (provider, provider_id)
);

-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- Keyset pagination over users, newest first.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);

CREATE TRIGGER users_touch_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION festapi_touch_updated_at();
