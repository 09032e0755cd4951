//! The committed schema.graphql matches the code.

#[test]
fn committed_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        committed == festapi::graphql::sdl(),
        "schema.graphql is out of date: regenerate it with `cargo run --quiet -- schema > schema.graphql`"
    );
}
