// @generated automatically by Diesel CLI.

diesel::table! {
    auth_flows (state_hash) {
        state_hash -> Text,
        provider -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        redirect_to -> Nullable<Text>,
        binding_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    identities (id) {
        id -> Text,
        user_id -> Text,
        provider -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    posts (id) {
        id -> Text,
        title -> Text,
        content -> Text,
        author_id -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (hash) {
        hash -> Bytea,
        session_id -> Text,
        created_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        provider -> Text,
        identity_id -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Inet>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Nullable<Text>,
        name -> Text,
        picture -> Nullable<Text>,
        verified_email -> Bool,
        provider -> Text,
        provider_id -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        name_set_by_user -> Bool,
        picture_set_by_user -> Bool,
    }
}

diesel::joinable!(identities -> users (user_id));
diesel::joinable!(posts -> users (author_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    auth_flows,
    identities,
    posts,
    refresh_tokens,
    sessions,
    users,
);
