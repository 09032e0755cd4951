CREATE TABLE posts (
    id         text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    title      text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200 AND title ~ '\S'),
    content    text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 10000 AND content ~ '\S'),
    author_id  text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination over all posts and over one author's posts, newest first.
CREATE INDEX posts_created_at_id_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_author_created_at_id_idx ON posts (author_id, created_at DESC, id DESC);

CREATE TRIGGER posts_touch_updated_at
    BEFORE UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION festapi_touch_updated_at();
