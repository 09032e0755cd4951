//! Rebuilds the crate when a migration changes (they are embedded in the binary), writes the
//! table of down migrations that `festapi migrate revert` reads to see which tables a revert
//! drops, and tells the crate the git commit it is built from, for the `festapi_build_info`
//! metric.
//!
//! `FESTAPI_GIT_COMMIT` set in the build environment wins (image builds have no `.git`); then
//! `git rev-parse`; `unknown` when neither answers.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    if let Err(error) = write_down_migrations() {
        println!("cargo:warning=reading migrations/: {error}");
        std::process::exit(1);
    }
    println!("cargo:rerun-if-env-changed=FESTAPI_GIT_COMMIT");
    let commit = std::env::var("FESTAPI_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Build again when HEAD moves: a commit, a checkout, or a branch update.
    for path in ["HEAD", "packed-refs"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path])
            && Path::new(&file).exists()
        {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = git(&["rev-parse", "--git-path", &reference])
    {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rustc-env=FESTAPI_GIT_COMMIT={commit}");
}

/// Writes `$OUT_DIR/down_migrations.rs`: `DOWN_MIGRATIONS`, every migration's name and its
/// `down.sql` (embedded with `include_str!`), oldest first. Diesel embeds the same files but
/// does not let the program read them back.
fn write_down_migrations() -> std::io::Result<()> {
    let folder = Path::new(&std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?)
        .join("migrations");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&folder)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() && entry.path().join("up.sql").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    let mut table = String::from("&[\n");
    for name in names {
        let down = folder.join(&name).join("down.sql");
        let sql = if down.is_file() {
            format!("include_str!({:?})", down.display().to_string())
        } else {
            "\"\"".to_owned()
        };
        table.push_str(&format!("    ({name:?}, {sql}),\n"));
    }
    table.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").map_err(std::io::Error::other)?)
        .join("down_migrations.rs");
    std::fs::write(out, table)
}

/// What `git args` prints, trimmed; `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
