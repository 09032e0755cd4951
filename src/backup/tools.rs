//! The PostgreSQL client tools: finding `pg_dump` and `pg_restore` on `PATH`, checking that they
//! are new enough for the server, and running them while following what they report.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Command;

use super::connection::Redactor;

/// How to install the client tools on the common systems.
const INSTALL_HINT: &str = "install the PostgreSQL client tools (Debian and Ubuntu: \
     `apt-get install postgresql-client`; Red Hat and Fedora: `dnf install postgresql`; \
     Alpine: `apk add postgresql-client`; macOS: `brew install libpq`)";

/// Where packages put the tools of each PostgreSQL version off `PATH`, as a folder and the
/// prefix of its per-version directories: `/usr/lib/postgresql/15/bin` on Debian and Ubuntu,
/// `/usr/pgsql-15/bin` from the PostgreSQL project's Red Hat packages. Only named in messages:
/// the tools that run are the ones on `PATH`, so what runs is always what the operator chose.
const VERSIONED_TOOL_DIRECTORIES: [(&str, &str); 2] =
    [("/usr/lib/postgresql", ""), ("/usr", "pgsql-")];

/// A PostgreSQL major version: `15`, or `9.6` before version 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct MajorVersion {
    major: u32,
    /// The second number, part of the major version before 10 only.
    minor: u32,
}

impl MajorVersion {
    /// The major version of a `server_version_num`, e.g. 150020 or 90624.
    pub(super) fn from_version_num(number: u32) -> Self {
        if number >= 100_000 {
            Self {
                major: number / 10_000,
                minor: 0,
            }
        } else {
            Self {
                major: number / 10_000,
                minor: number / 100 % 100,
            }
        }
    }

    /// The major version in a tool's `--version` line, e.g.
    /// `pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` or `pg_dump (PostgreSQL) 17beta1`.
    fn from_version_line(line: &str) -> Option<Self> {
        let version = line.split_once(") ").map_or(line, |(_, rest)| rest);
        let mut numbers = version
            .split(|character: char| !character.is_ascii_digit())
            .take_while(|number| !number.is_empty());
        let major: u32 = numbers.next()?.parse().ok()?;
        let minor = if major < 10 {
            numbers.next()?.parse().ok()?
        } else {
            0
        };
        Some(Self { major, minor })
    }
}

impl fmt::Display for MajorVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major < 10 {
            write!(formatter, "{}.{}", self.major, self.minor)
        } else {
            write!(formatter, "{}", self.major)
        }
    }
}

/// A PostgreSQL client tool found on `PATH`.
#[derive(Debug, Clone)]
pub(super) struct Tool {
    name: &'static str,
    path: PathBuf,
    version: MajorVersion,
}

impl Tool {
    /// Finds `name` on `PATH` and asks it for its version.
    pub(super) async fn locate(name: &'static str) -> anyhow::Result<Self> {
        let Some(path) = find_on_path(name) else {
            anyhow::bail!(
                "{name} was not found on PATH: {INSTALL_HINT}{}",
                elsewhere_hint(name, None)
            );
        };
        let output = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {} --version", path.display()))?;
        let line = String::from_utf8_lossy(&output.stdout);
        let version = MajorVersion::from_version_line(line.trim()).with_context(|| {
            format!(
                "{} --version printed {:?}, not a PostgreSQL version",
                path.display(),
                line.trim()
            )
        })?;
        Ok(Self {
            name,
            path,
            version,
        })
    }

    /// Refuses a tool older than the server: it could not read the server's catalogs, or
    /// write what a server of that version needs.
    pub(super) fn ensure_supports(&self, server: MajorVersion) -> anyhow::Result<()> {
        if self.version >= server {
            return Ok(());
        }
        anyhow::bail!(
            "{name} {tool} at {path} is older than the PostgreSQL {server} server: {INSTALL_HINT}, \
             version {server} or newer (packages named postgresql-client-{server} on Debian and \
             Ubuntu, from apt.postgresql.org when the distribution's are older), and put its \
             directory first on PATH{elsewhere}",
            name = self.name,
            tool = self.version,
            path = self.path.display(),
            elsewhere = elsewhere_hint(self.name, Some(server)),
        )
    }

    /// A command running this tool, its standard input closed, killed if dropped unfinished.
    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    /// Runs `command` (made by [`Tool::command`]) to its end. Each `--verbose` step the tool
    /// reports goes to `on_step`; its other lines on standard error (errors, warnings and their
    /// details), with the password redacted, are quoted by a failure's message, or returned.
    pub(super) async fn run(
        &self,
        mut command: Command,
        redactor: &Redactor,
        on_step: &mut dyn FnMut(&str),
    ) -> anyhow::Result<ToolOutput> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.path.display()))?;
        let mut stdout = child.stdout.take().context("the tool's standard output")?;
        let stderr = child.stderr.take().context("the tool's standard error")?;
        let reading_stdout = tokio::spawn(async move {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).await.map(|_| bytes)
        });

        let mut diagnostics = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .with_context(|| format!("reading what {} reports", self.name))?
        {
            let line = redactor.redact(&line);
            match ToolLine::classify(self.name, &line) {
                ToolLine::Step(step) => on_step(step),
                ToolLine::Diagnostic(text) => diagnostics.push(text.to_owned()),
            }
        }
        let status = child
            .wait()
            .await
            .with_context(|| format!("waiting for {}", self.name))?;
        let stdout = reading_stdout
            .await
            .context("the task reading the tool's output")?
            .with_context(|| format!("reading the output of {}", self.name))?;
        if !status.success() {
            return Err(failure(self.name, status, &diagnostics));
        }
        Ok(ToolOutput {
            stdout,
            diagnostics,
        })
    }
}

/// What a tool that succeeded wrote.
#[derive(Debug, Clone, Default)]
pub(super) struct ToolOutput {
    /// Its standard output.
    pub(super) stdout: Vec<u8>,
    /// Its warnings and their details, from standard error.
    pub(super) diagnostics: Vec<String>,
}

/// A line a tool wrote to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolLine<'line> {
    /// What `--verbose` reports doing, without the tool's name: `dumping contents of table
    /// "public.users"`.
    Step(&'line str),
    /// An error, warning, detail or hint, or the continuation of one, as written.
    Diagnostic(&'line str),
}

impl<'line> ToolLine<'line> {
    fn classify(tool: &str, line: &'line str) -> Self {
        let Some(message) = line
            .strip_prefix(tool)
            .and_then(|rest| rest.strip_prefix(": "))
        else {
            return Self::Diagnostic(line);
        };
        let is_diagnostic = ["error:", "warning:", "detail:", "hint:", "fatal:"]
            .iter()
            .any(|level| message.starts_with(level));
        if is_diagnostic {
            Self::Diagnostic(line)
        } else {
            Self::Step(message)
        }
    }
}

/// The table a `--verbose` step of `pg_dump` or `pg_restore` starts on, such as `public.users`
/// in `dumping contents of table "public.users"`.
pub(super) fn table_of_step<'step>(step: &'step str, prefix: &str) -> Option<&'step str> {
    let quoted = step.strip_prefix(prefix)?;
    Some(quoted.trim_matches('"'))
}

fn failure(tool: &str, status: ExitStatus, diagnostics: &[String]) -> anyhow::Error {
    if diagnostics.is_empty() {
        anyhow::anyhow!("{tool} failed ({status}) without saying why")
    } else {
        anyhow::anyhow!("{tool} failed ({status}):\n{}", diagnostics.join("\n"))
    }
}

/// The first executable file called `name` in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|directory| !directory.as_os_str().is_empty())
        .map(|directory| directory.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;

    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Names the copies of `name` that packages installed off `PATH` (of at least version
/// `at_least`), as a hint to put one of them on `PATH`.
fn elsewhere_hint(name: &str, at_least: Option<MajorVersion>) -> String {
    let found: Vec<String> = versioned_copies(name)
        .into_iter()
        .filter(|(version, _)| at_least.is_none_or(|minimum| *version >= minimum))
        .map(|(_, path)| path.display().to_string())
        .collect();
    if found.is_empty() {
        String::new()
    } else {
        format!(
            "; this machine has {} off PATH: add its directory to PATH",
            found.join(", ")
        )
    }
}

/// Copies of `name` in the per-version directories packages use, newest first.
fn versioned_copies(name: &str) -> Vec<(MajorVersion, PathBuf)> {
    let mut copies = Vec::new();
    for (root, prefix) in VERSIONED_TOOL_DIRECTORIES {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let directory = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = directory
                .strip_prefix(prefix)
                .and_then(MajorVersion::from_version_line)
            else {
                continue;
            };
            let candidate = entry.path().join("bin").join(name);
            if is_executable(&candidate) {
                copies.push((version, candidate));
            }
        }
    }
    copies.sort_by(|first, second| second.cmp(first));
    copies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_come_from_version_numbers_and_lines() {
        let fifteen = MajorVersion::from_version_num(150_020);
        assert_eq!(fifteen.to_string(), "15");
        assert_eq!(MajorVersion::from_version_num(90_624).to_string(), "9.6");
        assert_eq!(
            MajorVersion::from_version_line("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(fifteen)
        );
        assert_eq!(
            MajorVersion::from_version_line("pg_restore (PostgreSQL) 17beta1")
                .map(|version| version.to_string()),
            Some("17".to_owned())
        );
        assert_eq!(
            MajorVersion::from_version_line("pg_dump (PostgreSQL) 9.6.24")
                .map(|version| version.to_string()),
            Some("9.6".to_owned())
        );
        assert_eq!(
            MajorVersion::from_version_line("pg_dump (PostgreSQL) dev"),
            None
        );
    }

    #[test]
    fn versions_order_across_the_change_of_numbering() {
        let nine_six = MajorVersion::from_version_num(90_624);
        let ten = MajorVersion::from_version_num(100_023);
        let fifteen = MajorVersion::from_version_num(150_020);
        assert!(nine_six < ten && ten < fifteen);
        assert_eq!(fifteen, MajorVersion::from_version_num(150_000));
    }

    #[test]
    fn a_tool_older_than_the_server_is_refused_with_what_to_install() {
        let tool = Tool {
            name: "pg_dump",
            path: PathBuf::from("/usr/bin/pg_dump"),
            version: MajorVersion::from_version_num(130_000),
        };
        let server = MajorVersion::from_version_num(160_004);

        let error = tool.ensure_supports(server).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "pg_dump 13 at /usr/bin/pg_dump is older than the PostgreSQL 16 server"
            ),
            "{error}"
        );
        assert!(error.contains("postgresql-client-16"), "{error}");
        assert!(tool.ensure_supports(tool.version).is_ok());
    }

    #[test]
    fn lines_are_steps_or_diagnostics() {
        assert_eq!(
            ToolLine::classify(
                "pg_dump",
                "pg_dump: dumping contents of table \"public.users\""
            ),
            ToolLine::Step("dumping contents of table \"public.users\"")
        );
        for (tool, line) in [
            ("pg_dump", "pg_dump: error: connection to server failed"),
            (
                "pg_restore",
                "pg_restore: warning: errors ignored on restore: 1",
            ),
            (
                "pg_restore",
                "pg_restore: detail: Command was: CREATE TABLE users ();",
            ),
            ("pg_restore", "Command was: CREATE TABLE users ();"),
        ] {
            assert_eq!(ToolLine::classify(tool, line), ToolLine::Diagnostic(line));
        }
        assert_eq!(
            table_of_step(
                "processing data for table \"public.posts\"",
                "processing data for table "
            ),
            Some("public.posts")
        );
        assert_eq!(
            table_of_step(
                "creating TABLE \"public.posts\"",
                "processing data for table "
            ),
            None
        );
    }
}
