//! One typed configuration, read from the environment. With `XLPORT_PROFILE`
//! unset or `local`, everything has a default that points at the local stack
//! (LocalStack on 127.0.0.1:4566, Postgres on 127.0.0.1:5432); with `aws`,
//! the deployment must say where things are and a missing variable is an error.

use std::env;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Local,
    Aws,
}

/// Where the database password lives on AWS (see infra/README.md,
/// "Function environment"); `secrets::resolve_database_url` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSecret {
    pub arn: String,
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub sslmode: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub profile: Profile,
    /// Empty until resolved when the password comes from `database_secret`.
    pub database_url: String,
    pub database_secret: Option<DatabaseSecret>,
    pub db_max_connections: u32,
    /// A pooled connection idle this long is closed (`XLPORT_DB_IDLE_SECS`,
    /// default 20): a function instance between jobs holds no Postgres
    /// connection, so many instances fit in Postgres's default 100
    /// `max_connections` (issue #15).
    pub db_idle_timeout: Duration,
    /// Endpoint for S3 and SQS; `None` means the real AWS endpoints.
    pub aws_endpoint_url: Option<String>,
    pub region: String,
    pub bucket: String,
    pub imports_queue_url: String,
    pub exports_queue_url: String,
    pub upload_url_ttl: Duration,
    pub download_url_ttl: Duration,
    pub max_upload_bytes: u64,
    /// Uploads at least this large get a multipart upload instead of one PUT.
    pub multipart_threshold_bytes: u64,
    pub multipart_part_bytes: u64,
    pub tmp_dir: PathBuf,
    pub datasets_file: Option<PathBuf>,
    pub import_part_rows: usize,
    pub max_sheet_inflated_bytes: u64,
    pub max_columns: usize,
    pub xlsx_compression_level: u8,
    /// How long a worker's claim on a job lasts before another may take over.
    pub job_lease: Duration,
    /// How long a job may wait for a worker before a sweep sends it again
    /// (`XLPORT_STALL_SECS`, default 120; see `crate::sweep`).
    pub stall: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required when XLPORT_PROFILE=aws")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Reads variables through a lookup function so tests need not touch the
/// process environment.
pub struct Env<F: Fn(&str) -> Option<String>> {
    lookup: F,
    profile: Profile,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn raw(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &'static str, local_default: &str) -> Result<String, ConfigError> {
        match (self.raw(name), self.profile) {
            (Some(v), _) => Ok(v),
            (None, Profile::Local) => Ok(local_default.to_string()),
            (None, Profile::Aws) => Err(ConfigError::Missing(name)),
        }
    }

    fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                value: v.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:4566";
pub const LOCAL_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/xlport";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let profile = match lookup("XLPORT_PROFILE").as_deref().map(str::trim) {
            None | Some("") | Some("local") => Profile::Local,
            Some("aws") => Profile::Aws,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "XLPORT_PROFILE",
                    value: other.to_string(),
                    reason: "expected `local` or `aws`".into(),
                });
            }
        };
        let e = Env { lookup, profile };
        let aws_endpoint_url = match profile {
            Profile::Local => Some(e.string("AWS_ENDPOINT_URL", LOCAL_ENDPOINT)?),
            Profile::Aws => e.raw("AWS_ENDPOINT_URL"),
        };
        let endpoint = aws_endpoint_url.clone().unwrap_or_default();
        let region = e.string("AWS_REGION", "us-east-1")?;
        let compression: u8 = e.parsed("XLPORT_XLSX_COMPRESSION_LEVEL", 3)?;
        if compression > 9 {
            return Err(ConfigError::Invalid {
                name: "XLPORT_XLSX_COMPRESSION_LEVEL",
                value: compression.to_string(),
                reason: "zip levels are 0..=9".into(),
            });
        }
        let part_bytes: u64 = e.parsed("XLPORT_MULTIPART_PART_BYTES", 16 * 1024 * 1024)?;
        if part_bytes < 5 * 1024 * 1024 {
            return Err(ConfigError::Invalid {
                name: "XLPORT_MULTIPART_PART_BYTES",
                value: part_bytes.to_string(),
                reason: "S3 parts are at least 5 MiB".into(),
            });
        }
        // On AWS the password is in Secrets Manager: the deployment names the
        // secret and the server, and the URL is built at cold start.
        let database_secret = match (e.raw("DATABASE_URL"), e.raw("XLPORT_DATABASE_SECRET_ARN")) {
            (None, Some(arn)) => Some(DatabaseSecret {
                arn,
                host: e.string("XLPORT_DATABASE_HOST", "127.0.0.1")?,
                port: e.parsed("XLPORT_DATABASE_PORT", 5432)?,
                name: e.string("XLPORT_DATABASE_NAME", "xlport")?,
                user: e.string("XLPORT_DATABASE_USER", "xlport")?,
                sslmode: e.parsed("XLPORT_DATABASE_SSLMODE", "require".to_string())?,
            }),
            _ => None,
        };
        let database_url = match database_secret {
            Some(_) => String::new(),
            None => e.string("DATABASE_URL", LOCAL_DATABASE_URL)?,
        };
        Ok(Config {
            profile,
            database_url,
            database_secret,
            db_max_connections: e.parsed("XLPORT_DB_MAX_CONNECTIONS", 4)?,
            db_idle_timeout: Duration::from_secs(e.parsed("XLPORT_DB_IDLE_SECS", 20)?),
            region: region.clone(),
            bucket: e.string("XLPORT_BUCKET", "xlport")?,
            imports_queue_url: e.string(
                "XLPORT_IMPORTS_QUEUE_URL",
                &format!("{endpoint}/queue/{region}/000000000000/xlport-imports"),
            )?,
            exports_queue_url: e.string(
                "XLPORT_EXPORTS_QUEUE_URL",
                &format!("{endpoint}/queue/{region}/000000000000/xlport-exports"),
            )?,
            aws_endpoint_url,
            upload_url_ttl: Duration::from_secs(e.parsed("XLPORT_UPLOAD_URL_TTL_SECS", 3600)?),
            download_url_ttl: Duration::from_secs(e.parsed("XLPORT_DOWNLOAD_URL_TTL_SECS", 900)?),
            max_upload_bytes: e.parsed("XLPORT_MAX_UPLOAD_BYTES", 5 * 1024 * 1024 * 1024)?,
            multipart_threshold_bytes: e
                .parsed("XLPORT_MULTIPART_THRESHOLD_BYTES", 64 * 1024 * 1024)?,
            multipart_part_bytes: part_bytes,
            tmp_dir: PathBuf::from(
                e.parsed("XLPORT_TMP_DIR", env::temp_dir().display().to_string())?,
            ),
            datasets_file: e.raw("XLPORT_DATASETS_FILE").map(PathBuf::from),
            import_part_rows: e.parsed("XLPORT_IMPORT_PART_ROWS", 10_000)?,
            max_sheet_inflated_bytes: e
                .parsed("XLPORT_MAX_SHEET_INFLATED_BYTES", 1024 * 1024 * 1024)?,
            max_columns: e.parsed("XLPORT_MAX_COLUMNS", 16_384)?,
            xlsx_compression_level: compression,
            job_lease: Duration::from_secs(e.parsed("XLPORT_JOB_LEASE_SECS", 120)?),
            stall: Duration::from_secs(e.parsed("XLPORT_STALL_SECS", 120)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn local_defaults_point_at_the_local_stack() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.profile, Profile::Local);
        assert_eq!(c.aws_endpoint_url.as_deref(), Some(LOCAL_ENDPOINT));
        assert_eq!(c.database_url, LOCAL_DATABASE_URL);
        assert!(c.imports_queue_url.ends_with("/xlport-imports"));
        assert_eq!(c.xlsx_compression_level, 3);
        assert_eq!(c.import_part_rows, 10_000);
    }

    #[test]
    fn aws_profile_requires_explicit_locations() {
        let err = cfg(&[("XLPORT_PROFILE", "aws"), ("AWS_REGION", "eu-west-1")]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing("DATABASE_URL")), "{err}");
    }

    #[test]
    fn aws_profile_takes_the_database_from_a_secret() {
        let c = cfg(&[
            ("XLPORT_PROFILE", "aws"),
            ("AWS_REGION", "eu-west-1"),
            (
                "XLPORT_DATABASE_SECRET_ARN",
                "arn:aws:secretsmanager:eu-west-1:1:secret:rds",
            ),
            ("XLPORT_DATABASE_HOST", "db.internal"),
            ("XLPORT_DATABASE_NAME", "xlport"),
            ("XLPORT_DATABASE_USER", "xlport"),
            ("XLPORT_BUCKET", "b"),
            ("XLPORT_IMPORTS_QUEUE_URL", "https://sqs/imports"),
            ("XLPORT_EXPORTS_QUEUE_URL", "https://sqs/exports"),
        ])
        .unwrap();
        let s = c.database_secret.expect("secret");
        assert_eq!(
            (s.host.as_str(), s.port, s.sslmode.as_str()),
            ("db.internal", 5432, "require")
        );
        assert!(c.database_url.is_empty());
        assert_eq!(c.aws_endpoint_url, None);
    }

    #[test]
    fn invalid_numbers_name_the_variable() {
        let err = cfg(&[("XLPORT_IMPORT_PART_ROWS", "ten")]).unwrap_err();
        assert!(err.to_string().contains("XLPORT_IMPORT_PART_ROWS"), "{err}");
        assert!(cfg(&[("XLPORT_XLSX_COMPRESSION_LEVEL", "12")]).is_err());
        assert!(cfg(&[("XLPORT_MULTIPART_PART_BYTES", "1000")]).is_err());
    }
}
