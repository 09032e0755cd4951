//! GraphQL over HTTP conformance: the public graphql-http audit suite, run against a real server.
//!
//! The audits are a Node script (`tests/conformance/audit.mjs`) whose dependencies `npm ci`
//! installs in `tests/conformance/node_modules`. Without Node or those modules the test is
//! skipped with a note on the terminal, unless `CI` is set: there it fails rather than passing
//! without running.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::support::TestApp;

/// How long the whole audit may run; it takes about a second.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The folder of the audit script and its `package.json`.
fn conformance_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// The Node executable (`NODE`, or `node` on the `PATH`), or `None` after a note on the terminal
/// when it or the audit's modules are missing and `CI` is unset.
async fn node() -> Option<PathBuf> {
    let node = std::env::var_os("NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let missing = if Command::new(&node).arg("--version").output().await.is_err() {
        format!("{} is missing (apt-get install nodejs npm)", node.display())
    } else if !conformance_directory()
        .join("node_modules/graphql-http/package.json")
        .exists()
    {
        "graphql-http is not installed (npm ci --prefix tests/conformance)".to_owned()
    } else {
        return Some(node);
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing}, and CI must run the conformance audit"
    );
    // Written to the terminal itself: the test harness would swallow `eprintln!`.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {missing}, so the GraphQL over HTTP audit did not run \
         (CI fails instead of skipping) ***\n"
    );
    None
}

#[tokio::test]
async fn passes_every_graphql_over_http_audit() {
    let Some(node) = node().await else {
        return;
    };
    let app = TestApp::new().await;

    // Async, so this test's runtime keeps serving the audit's requests while it waits.
    let audit = Command::new(node)
        .arg(conformance_directory().join("audit.mjs"))
        .arg(app.url("/graphql"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(AUDIT_TIMEOUT, audit)
        .await
        .expect("the audit to finish in time")
        .expect("the audit to start");

    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the graphql-http audit failed ({}):\n{report}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(" 0 warn, 0 error"), "{report}");
}
