//! Secret settings read from files, as Docker and Kubernetes secrets are mounted: each setting
//! of [`FILE_SETTINGS`] may instead be given as the path of a file in `{SETTING}_FILE`.

use std::collections::HashMap;

use super::ConfigError;

/// The settings that may be given through a file, with the variable that names the file.
pub const FILE_SETTINGS: [(&str, &str); 6] = [
    ("DATABASE_URL", "DATABASE_URL_FILE"),
    ("JWT_SECRET", "JWT_SECRET_FILE"),
    ("AUTH_OIDC_CLIENT_SECRET", "AUTH_OIDC_CLIENT_SECRET_FILE"),
    (
        "AUTH_GOOGLE_CLIENT_SECRET",
        "AUTH_GOOGLE_CLIENT_SECRET_FILE",
    ),
    ("AUTH_KAKAO_CLIENT_SECRET", "AUTH_KAKAO_CLIENT_SECRET_FILE"),
    ("AUTH_NAVER_CLIENT_SECRET", "AUTH_NAVER_CLIENT_SECRET_FILE"),
];

/// The value of each setting given through its file: the file's contents without one trailing
/// newline. A setting given both ways is an error, even with equal values, so that nobody
/// wonders which one counts.
pub(super) fn from_files(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<HashMap<&'static str, String>, ConfigError> {
    let is_set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let mut values = HashMap::new();
    for (setting, file_variable) in FILE_SETTINGS {
        let Some(path) = is_set(file_variable) else {
            continue;
        };
        if is_set(setting).is_some() {
            return Err(ConfigError::new(
                file_variable,
                format!("{setting} is set too: give the setting one way, not both"),
            ));
        }
        let path = path.trim();
        let contents = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new(file_variable, format!("cannot read {path:?}: {error}"))
        })?;
        let value = contents
            .strip_suffix('\n')
            .map_or(contents.as_str(), |line| {
                line.strip_suffix('\r').unwrap_or(line)
            });
        if value.trim().is_empty() {
            return Err(ConfigError::new(
                file_variable,
                format!("{path:?} is empty: it must hold the value of {setting}"),
            ));
        }
        values.insert(setting, value.to_owned());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::config::tests::{TempFile, config_from};

    #[test]
    fn secrets_come_from_files_without_one_trailing_newline() {
        let url = TempFile::new("postgres://festapi:pw@db.internal:5432/festapi\n");
        let secret = TempFile::new(&format!("{}\r\n", "s".repeat(40)));
        let config = config_from(&[
            ("DATABASE_URL_FILE", url.path()),
            ("JWT_SECRET_FILE", secret.path()),
            ("APP_ENV", "production"),
        ])
        .unwrap();
        assert_eq!(
            config.database.url(),
            "postgres://festapi:pw@db.internal:5432/festapi"
        );
        let crate::config::SigningKey::Secret { secret, .. } = config.jwt.signing else {
            panic!("a shared secret");
        };
        assert_eq!(secret.expose_secret(), "s".repeat(40));

        // Only one newline is the file's end; a second belongs to the value.
        let two_newlines = TempFile::new(&format!("{}\n\n", "t".repeat(40)));
        let config = config_from(&[("JWT_SECRET_FILE", two_newlines.path())]).unwrap();
        let crate::config::SigningKey::Secret { secret, .. } = config.jwt.signing else {
            panic!("a shared secret");
        };
        assert_eq!(secret.expose_secret(), format!("{}\n", "t".repeat(40)));
    }

    #[test]
    fn every_secret_setting_has_a_file_variable() {
        for (setting, file_variable) in FILE_SETTINGS {
            assert_eq!(file_variable, format!("{setting}_FILE"));
            let file = TempFile::new("value\n");
            let values =
                from_files(&|name: &str| (name == file_variable).then(|| file.path().to_owned()))
                    .unwrap();
            assert_eq!(values[setting], "value");
        }
    }

    #[test]
    fn a_setting_given_both_ways_is_an_error_even_when_equal() {
        let secret = "s".repeat(40);
        let file = TempFile::new(&secret);
        let error =
            config_from(&[("JWT_SECRET", &secret), ("JWT_SECRET_FILE", file.path())]).unwrap_err();
        assert_eq!(error.variable, "JWT_SECRET_FILE");
        assert!(error.problem.contains("JWT_SECRET is set too"), "{error}");
    }

    #[test]
    fn missing_and_empty_files_are_errors() {
        let error = config_from(&[("DATABASE_URL_FILE", "/nonexistent/db-url")]).unwrap_err();
        assert_eq!(error.variable, "DATABASE_URL_FILE");
        assert!(
            error
                .problem
                .contains("cannot read \"/nonexistent/db-url\""),
            "{error}"
        );
        for contents in ["", "\n", "  \n"] {
            let file = TempFile::new(contents);
            let error = config_from(&[("JWT_SECRET_FILE", file.path())]).unwrap_err();
            assert_eq!(error.variable, "JWT_SECRET_FILE");
            assert!(error.problem.contains("is empty"), "{contents:?}: {error}");
        }
    }
}
