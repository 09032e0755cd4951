//! How access tokens are signed: with `JWT_SECRET` (HS256), or with the RS256 or EdDSA key in
//! `JWT_PRIVATE_KEY_FILE`, named `JWT_KEY_ID`, while the public keys of earlier keys in
//! `JWT_PREVIOUS_PUBLIC_KEYS_FILE` are still accepted.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde_json::Value;

use super::{AppEnv, ConfigError};

/// The shortest `JWT_SECRET` accepted: 256 bits, the output size of HS256.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_KEY_BITS: usize = 2048;

/// The longest key id (`kid`) accepted.
pub const MAX_KEY_ID_CHARS: usize = 128;

/// Signs tokens outside production when no key is set. Public, hence never secure.
const DEVELOPMENT_JWT_SECRET: &str = "festapi-development-secret-not-for-production-use";

const HOW_TO_MAKE_A_KEY: &str = "make one with `openssl genpkey -algorithm ed25519` or \
                                 `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`";

/// How access tokens are signed and checked.
#[derive(Clone)]
pub enum SigningKey {
    /// HS256 with a shared secret.
    Secret {
        /// `JWT_SECRET`, or outside production the public development secret.
        secret: SecretString,
        /// Whether `secret` is the public development secret.
        is_development: bool,
    },
    /// A private key whose public keys are published at `/.well-known/jwks.json`.
    KeyPair(KeyPair),
}

/// A private key that signs new tokens, and the public keys tokens are checked against.
#[derive(Clone)]
pub struct KeyPair {
    /// RS256 or EdDSA.
    pub algorithm: Algorithm,
    /// `JWT_KEY_ID`, or the key's RFC 7638 thumbprint: the `kid` of the tokens it signs.
    pub key_id: String,
    /// The private key from `JWT_PRIVATE_KEY_FILE`.
    pub private_key: EncodingKey,
    /// The public half of `private_key` first, then those of `JWT_PREVIOUS_PUBLIC_KEYS_FILE`.
    pub public_keys: Vec<PublicKey>,
}

/// A public key that tokens naming its id are checked against.
#[derive(Clone)]
pub struct PublicKey {
    /// Its `kid`.
    pub key_id: String,
    /// The one algorithm it verifies.
    pub algorithm: Algorithm,
    /// The key, ready to verify.
    pub key: DecodingKey,
    /// The key as published in the JWK set: `kty`, `use`, `alg`, `kid` and the public values.
    pub jwk: Jwk,
}

impl SigningKey {
    /// Whether tokens are signed with the public development secret.
    pub fn is_development_secret(&self) -> bool {
        matches!(
            self,
            Self::Secret {
                is_development: true,
                ..
            }
        )
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret { is_development, .. } => formatter
                .debug_struct("Secret")
                .field("is_development", is_development)
                .finish_non_exhaustive(),
            Self::KeyPair(pair) => formatter
                .debug_struct("KeyPair")
                .field("algorithm", &pair.algorithm)
                .field("key_id", &pair.key_id)
                .field(
                    "public_keys",
                    &pair
                        .public_keys
                        .iter()
                        .map(|key| &key.key_id)
                        .collect::<Vec<_>>(),
                )
                .finish_non_exhaustive(),
        }
    }
}

/// Reads `JWT_SECRET`, `JWT_PRIVATE_KEY_FILE`, `JWT_KEY_ID` and `JWT_PREVIOUS_PUBLIC_KEYS_FILE`.
pub(super) fn signing_key(
    env: AppEnv,
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<SigningKey, ConfigError> {
    let secret = read("JWT_SECRET");
    let Some(key_file) = read("JWT_PRIVATE_KEY_FILE") else {
        for variable in ["JWT_KEY_ID", "JWT_PREVIOUS_PUBLIC_KEYS_FILE"] {
            if read(variable).is_some() {
                return Err(ConfigError::new(
                    variable,
                    "is only used with JWT_PRIVATE_KEY_FILE: set that too, or unset this",
                ));
            }
        }
        return jwt_secret(env, secret);
    };
    if secret.is_some() {
        return Err(ConfigError::new(
            "JWT_SECRET",
            "cannot be used with JWT_PRIVATE_KEY_FILE: tokens are signed with one key, so \
             unset one of them",
        ));
    }
    let key_file = key_file.trim();
    let pem = read_file("JWT_PRIVATE_KEY_FILE", key_file)?;
    let (private_key, algorithm, parameters) = private_key(key_file, &pem)?;
    let key_id = match read("JWT_KEY_ID") {
        Some(key_id) => checked_key_id(key_id.trim())
            .map_err(|problem| ConfigError::new("JWT_KEY_ID", problem))?,
        None => thumbprint(algorithm, &parameters),
    };
    let current = public_key(key_id.clone(), algorithm, parameters)
        .map_err(|problem| ConfigError::new("JWT_PRIVATE_KEY_FILE", problem))?;
    check_pair(&private_key, &current).map_err(|problem| {
        ConfigError::new("JWT_PRIVATE_KEY_FILE", format!("{key_file:?}: {problem}"))
    })?;

    let mut public_keys = vec![current];
    if let Some(previous_file) = read("JWT_PREVIOUS_PUBLIC_KEYS_FILE") {
        let previous_file = previous_file.trim();
        let text = read_file("JWT_PREVIOUS_PUBLIC_KEYS_FILE", previous_file)?;
        let previous = previous_public_keys(&text).map_err(|problem| {
            ConfigError::new(
                "JWT_PREVIOUS_PUBLIC_KEYS_FILE",
                format!("{previous_file:?}: {problem}"),
            )
        })?;
        for key in previous {
            if public_keys.iter().any(|known| known.key_id == key.key_id) {
                return Err(ConfigError::new(
                    "JWT_PREVIOUS_PUBLIC_KEYS_FILE",
                    format!(
                        "{previous_file:?}: key id {:?} is used twice (by the current key or \
                         another previous one); every key needs its own id",
                        key.key_id
                    ),
                ));
            }
            public_keys.push(key);
        }
    }
    Ok(SigningKey::KeyPair(KeyPair {
        algorithm,
        key_id,
        private_key,
        public_keys,
    }))
}

fn jwt_secret(env: AppEnv, value: Option<String>) -> Result<SigningKey, ConfigError> {
    const HOW_TO_MAKE_ONE: &str = "generate one with `openssl rand -base64 48`";
    let secret = match value {
        Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!(
                    "must be at least {MIN_JWT_SECRET_BYTES} bytes, got {}; {HOW_TO_MAKE_ONE}",
                    secret.len()
                ),
            ));
        }
        Some(secret) => secret,
        None if env.is_production() => {
            return Err(ConfigError::new(
                "JWT_SECRET",
                format!(
                    "is required when APP_ENV=production, unless JWT_PRIVATE_KEY_FILE is set; \
                     {HOW_TO_MAKE_ONE}"
                ),
            ));
        }
        None => {
            return Ok(SigningKey::Secret {
                secret: SecretString::from(DEVELOPMENT_JWT_SECRET),
                is_development: true,
            });
        }
    };
    Ok(SigningKey::Secret {
        secret: SecretString::from(secret),
        is_development: false,
    })
}

fn read_file(variable: &'static str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(variable, format!("cannot read {path:?}: {error}")))
}

/// The signing key in `pem`, its algorithm, and its public values.
fn private_key(
    path: &str,
    pem: &str,
) -> Result<(EncodingKey, Algorithm, AlgorithmParameters), ConfigError> {
    let refuse = |problem: String| ConfigError::new("JWT_PRIVATE_KEY_FILE", problem);
    if let Ok(key) = EncodingKey::from_ed_pem(pem.as_bytes()) {
        let signing_key = ed25519_dalek::SigningKey::from_pkcs8_der(key.inner())
            .map_err(|error| refuse(format!("{path:?} is not a usable Ed25519 key: {error}")))?;
        let parameters = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(signing_key.verifying_key().as_bytes()),
        });
        return Ok((key, Algorithm::EdDSA, parameters));
    }
    if let Ok(key) = EncodingKey::from_rsa_pem(pem.as_bytes()) {
        let public = Jwk::from_encoding_key(&key, Algorithm::RS256).map_err(|_| {
            refuse(format!(
                "{path:?} holds no RSA private key; {HOW_TO_MAKE_A_KEY}"
            ))
        })?;
        return Ok((key, Algorithm::RS256, public.algorithm));
    }
    let problem = if EncodingKey::from_ec_pem(pem.as_bytes()).is_ok() {
        "is an EC key; tokens are signed with RS256 or EdDSA"
    } else if pem.contains("ENCRYPTED PRIVATE KEY") {
        "is encrypted; decrypt it with `openssl pkcs8 -in KEY -out KEY.pem` (the file's \
         permissions protect it)"
    } else {
        "is not a PEM private key"
    };
    Err(refuse(format!("{path:?} {problem}; {HOW_TO_MAKE_A_KEY}")))
}

/// A key id as written in a token's header: 1 to 128 printable ASCII characters.
fn checked_key_id(key_id: &str) -> Result<String, String> {
    if key_id.is_empty()
        || key_id.chars().count() > MAX_KEY_ID_CHARS
        || !key_id.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(format!(
            "a key id must be 1 to {MAX_KEY_ID_CHARS} printable ASCII characters without \
             spaces, got {key_id:?}"
        ));
    }
    Ok(key_id.to_owned())
}

/// The RFC 7638 SHA-256 thumbprint of a public key: its default key id. It covers the key's
/// values only, so the id it is computed under does not matter.
fn thumbprint(algorithm: Algorithm, parameters: &AlgorithmParameters) -> String {
    jwk(String::new(), algorithm, parameters.clone()).thumbprint(ThumbprintHash::SHA256)
}

fn jwk(key_id: String, algorithm: Algorithm, parameters: AlgorithmParameters) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match algorithm {
                Algorithm::EdDSA => KeyAlgorithm::EdDSA,
                _ => KeyAlgorithm::RS256,
            }),
            key_id: Some(key_id),
            ..CommonParameters::default()
        },
        algorithm: parameters,
    }
}

/// A public key from its values, checked: RSA of at least [`MIN_RSA_KEY_BITS`], or Ed25519.
fn public_key(
    key_id: String,
    algorithm: Algorithm,
    parameters: AlgorithmParameters,
) -> Result<PublicKey, String> {
    let decode = |value: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| format!("its {name:?} is not unpadded base64url"))
    };
    match (&parameters, algorithm) {
        (AlgorithmParameters::RSA(rsa), Algorithm::RS256) => {
            let modulus = decode(&rsa.n, "n")?;
            decode(&rsa.e, "e")?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant * 8 < MIN_RSA_KEY_BITS {
                return Err(format!(
                    "RSA keys need at least {MIN_RSA_KEY_BITS} bits, this one has {}",
                    significant * 8
                ));
            }
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            if decode(&okp.x, "x")?.len() != ed25519_dalek::PUBLIC_KEY_LENGTH {
                return Err("its \"x\" is not an Ed25519 public key (32 bytes)".into());
            }
        }
        _ => {
            return Err(
                "only RS256 (kty RSA) and EdDSA (kty OKP, crv Ed25519) keys are accepted".into(),
            );
        }
    }
    let jwk = jwk(key_id.clone(), algorithm, parameters);
    let key = DecodingKey::from_jwk(&jwk).map_err(|error| format!("unusable key: {error}"))?;
    Ok(PublicKey {
        key_id,
        algorithm,
        key,
        jwk,
    })
}

/// Signs a token with `private_key` and checks it with `public`, so a key that cannot sign, or
/// a public key that does not belong to it, stops start-up rather than every sign-in.
fn check_pair(private_key: &EncodingKey, public: &PublicKey) -> Result<(), String> {
    let claims = serde_json::json!({ "sub": "start-up check", "exp": i64::MAX });
    let token = jsonwebtoken::encode(&Header::new(public.algorithm), &claims, private_key)
        .map_err(|error| format!("cannot sign with this key: {error}"))?;
    let mut validation = Validation::new(public.algorithm);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(&token, &public.key, &validation)
        .map(drop)
        .map_err(|error| format!("its signatures do not verify: {error}"))
}

/// Members that only private or secret keys have.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The keys of a JWK set (`{"keys": [...]}`) such as `/.well-known/jwks.json` publishes.
fn previous_public_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let set: Value = serde_json::from_str(text).map_err(|error| {
        format!("is not JSON: {error} (expected a JWK set {{\"keys\": [...]}})")
    })?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or(
        "is not a JWK set: expected {\"keys\": [...]}, such as /.well-known/jwks.json serves",
    )?;
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            previous_public_key(key).map_err(|problem| format!("key {}: {problem}", index + 1))
        })
        .collect()
}

fn previous_public_key(key: &Value) -> Result<PublicKey, String> {
    let object = key.as_object().ok_or("is not a JSON object")?;
    if let Some(member) = PRIVATE_MEMBERS
        .iter()
        .find(|member| object.contains_key(**member))
    {
        return Err(format!(
            "has the private member {member:?}: this file holds public keys only"
        ));
    }
    let jwk: Jwk =
        serde_json::from_value(key.clone()).map_err(|error| format!("is not a JWK: {error}"))?;
    let key_id = checked_key_id(jwk.common.key_id.as_deref().ok_or("has no \"kid\"")?)?;
    let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::OctetKeyPair(_), None | Some(KeyAlgorithm::EdDSA)) => {
            Algorithm::EdDSA
        }
        _ => {
            return Err(
                "only RS256 (kty RSA) and EdDSA (kty OKP, crv Ed25519) keys are accepted".into(),
            );
        }
    };
    public_key(key_id, algorithm, jwk.algorithm)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::LineEnding;

    use super::*;
    use crate::config::tests::TempFile;

    fn ed25519_pem(seed: u8) -> String {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    fn rsa_pem(bits: usize) -> String {
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
            .unwrap()
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    fn signing_key_from(pairs: &[(&str, &str)]) -> Result<SigningKey, ConfigError> {
        let vars: HashMap<&str, &str> = pairs.iter().copied().collect();
        signing_key(AppEnv::Production, &|name| {
            vars.get(name).map(|value| (*value).to_owned())
        })
    }

    fn key_pair(pairs: &[(&str, &str)]) -> KeyPair {
        match signing_key_from(pairs).unwrap() {
            SigningKey::KeyPair(pair) => pair,
            SigningKey::Secret { .. } => panic!("expected a key pair"),
        }
    }

    fn refusal(pairs: &[(&str, &str)]) -> ConfigError {
        signing_key_from(pairs).unwrap_err()
    }

    fn jwks_of(pair: &KeyPair) -> String {
        let keys: Vec<&Jwk> = pair.public_keys.iter().map(|key| &key.jwk).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    #[test]
    fn an_ed25519_key_signs_eddsa_under_its_thumbprint_unless_named() {
        let file = TempFile::new(&ed25519_pem(7));
        let pair = key_pair(&[("JWT_PRIVATE_KEY_FILE", file.path())]);
        assert_eq!(pair.algorithm, Algorithm::EdDSA);
        assert_eq!(
            pair.key_id.len(),
            43,
            "a base64url SHA-256: {}",
            pair.key_id
        );
        assert_eq!(pair.public_keys.len(), 1);
        assert_eq!(pair.public_keys[0].key_id, pair.key_id);

        let named = key_pair(&[
            ("JWT_PRIVATE_KEY_FILE", file.path()),
            ("JWT_KEY_ID", "2026-11"),
        ]);
        assert_eq!(named.key_id, "2026-11");
        assert_eq!(
            named.public_keys[0].jwk.common.key_id.as_deref(),
            Some("2026-11")
        );
    }

    #[test]
    fn rsa_keys_sign_rs256_and_need_2048_bits() {
        let file = TempFile::new(&rsa_pem(2048));
        let pair = key_pair(&[("JWT_PRIVATE_KEY_FILE", file.path())]);
        assert_eq!(pair.algorithm, Algorithm::RS256);

        let small = TempFile::new(&rsa_pem(1024));
        let error = refusal(&[("JWT_PRIVATE_KEY_FILE", small.path())]);
        assert_eq!(error.variable, "JWT_PRIVATE_KEY_FILE");
        assert!(
            error
                .problem
                .contains("at least 2048 bits, this one has 1024"),
            "{error}"
        );
    }

    #[test]
    fn files_that_hold_no_usable_private_key_are_refused() {
        let ec_key = p256::SecretKey::from_slice(&[9; 32])
            .unwrap()
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string();
        let public_only = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        for (contents, words) in [
            (ec_key.as_str(), "is an EC key"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "is encrypted",
            ),
            ("not a key", "is not a PEM private key"),
            (public_only, "is not a PEM private key"),
        ] {
            let file = TempFile::new(contents);
            let error = refusal(&[("JWT_PRIVATE_KEY_FILE", file.path())]);
            assert_eq!(error.variable, "JWT_PRIVATE_KEY_FILE");
            assert!(error.problem.contains(words), "{words}: {error}");
            assert!(error.problem.contains("openssl genpkey"), "{error}");
        }
        let error = refusal(&[("JWT_PRIVATE_KEY_FILE", "/nonexistent/festapi.pem")]);
        assert!(
            error
                .problem
                .contains("cannot read \"/nonexistent/festapi.pem\""),
            "{error}"
        );
    }

    #[test]
    fn one_signing_key_at_a_time() {
        let file = TempFile::new(&ed25519_pem(1));
        let error = refusal(&[
            ("JWT_PRIVATE_KEY_FILE", file.path()),
            ("JWT_SECRET", &"s".repeat(32)),
        ]);
        assert_eq!(error.variable, "JWT_SECRET");
        assert!(
            error
                .problem
                .contains("cannot be used with JWT_PRIVATE_KEY_FILE"),
            "{error}"
        );

        for variable in ["JWT_KEY_ID", "JWT_PREVIOUS_PUBLIC_KEYS_FILE"] {
            let error = refusal(&[(variable, "x"), ("JWT_SECRET", &"s".repeat(32))]);
            assert_eq!(error.variable, variable);
            assert!(
                error
                    .problem
                    .contains("only used with JWT_PRIVATE_KEY_FILE"),
                "{error}"
            );
        }
        let error = refusal(&[]);
        assert_eq!(error.variable, "JWT_SECRET");
        assert!(
            error.problem.contains("unless JWT_PRIVATE_KEY_FILE is set"),
            "{error}"
        );
    }

    #[test]
    fn key_ids_are_printable_and_short() {
        let file = TempFile::new(&ed25519_pem(1));
        for key_id in ["two words", "ключ", &"k".repeat(129)] {
            let error = refusal(&[
                ("JWT_PRIVATE_KEY_FILE", file.path()),
                ("JWT_KEY_ID", key_id),
            ]);
            assert_eq!(error.variable, "JWT_KEY_ID");
            assert!(
                error.problem.contains("1 to 128 printable ASCII"),
                "{error}"
            );
        }
    }

    #[test]
    fn previous_public_keys_come_from_a_jwk_set_and_are_accepted_after_the_current_one() {
        let old_key = TempFile::new(&ed25519_pem(1));
        let old = key_pair(&[
            ("JWT_PRIVATE_KEY_FILE", old_key.path()),
            ("JWT_KEY_ID", "old"),
        ]);
        let previous = TempFile::new(&jwks_of(&old));
        let new_key = TempFile::new(&ed25519_pem(2));
        let new = key_pair(&[
            ("JWT_PRIVATE_KEY_FILE", new_key.path()),
            ("JWT_KEY_ID", "new"),
            ("JWT_PREVIOUS_PUBLIC_KEYS_FILE", previous.path()),
        ]);
        let ids: Vec<&str> = new
            .public_keys
            .iter()
            .map(|key| key.key_id.as_str())
            .collect();
        assert_eq!(ids, ["new", "old"]);
        assert_eq!(new.public_keys[1].jwk, old.public_keys[0].jwk);

        let error = refusal(&[
            ("JWT_PRIVATE_KEY_FILE", old_key.path()),
            ("JWT_KEY_ID", "old"),
            ("JWT_PREVIOUS_PUBLIC_KEYS_FILE", previous.path()),
        ]);
        assert!(
            error.problem.contains("key id \"old\" is used twice"),
            "{error}"
        );
    }

    #[test]
    fn previous_key_files_that_are_not_public_jwk_sets_are_refused() {
        let new_key = TempFile::new(&ed25519_pem(2));
        let x = URL_SAFE_NO_PAD.encode([5; 32]);
        let cases = [
            ("{", "is not JSON"),
            ("[]", "is not a JWK set"),
            (r#"{"keys": [1]}"#, "key 1: is not a JSON object"),
            (
                &format!(
                    r#"{{"keys": [{{"kty":"OKP","crv":"Ed25519","x":"{x}","d":"{x}","kid":"a"}}]}}"#
                ),
                "key 1: has the private member \"d\"",
            ),
            (
                r#"{"keys": [{"kty":"oct","k":"c2VjcmV0","kid":"a"}]}"#,
                "has the private member \"k\"",
            ),
            (
                &format!(r#"{{"keys": [{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}]}}"#),
                "key 1: has no \"kid\"",
            ),
            (
                r#"{"keys": [{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"}]}"#,
                "not an Ed25519 public key (32 bytes)",
            ),
            (
                &format!(
                    r#"{{"keys": [{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"a","alg":"RS256"}}]}}"#
                ),
                "only RS256 (kty RSA) and EdDSA",
            ),
            (
                r#"{"keys": [{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a"}]}"#,
                "RSA keys need at least 2048 bits, this one has 24",
            ),
        ];
        for (contents, words) in cases {
            let previous = TempFile::new(contents);
            let error = refusal(&[
                ("JWT_PRIVATE_KEY_FILE", new_key.path()),
                ("JWT_PREVIOUS_PUBLIC_KEYS_FILE", previous.path()),
            ]);
            assert_eq!(error.variable, "JWT_PREVIOUS_PUBLIC_KEYS_FILE");
            assert!(error.problem.contains(words), "{words}: {error}");
        }
    }
}
