//! Every signature `#[micro::service]` rejects, with the error it gives: `tests/ui/<group>-<case>.rs`
//! next to its expected `.stderr`. After changing a message, regenerate them with
//! `TRYBUILD=overwrite cargo test --test ui` and read every diff: each error must point at the
//! user's offending tokens.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
