//! The database password on AWS: read from the Secrets Manager secret RDS
//! manages, at cold start, so it never sits in the function's environment.

use anyhow::Context;

use crate::config::Config;

/// Fills `config.database_url` from the secret when the deployment names one
/// (`XLPORT_DATABASE_SECRET_ARN`) instead of giving `DATABASE_URL`.
pub async fn resolve_database_url(
    config: &mut Config,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<()> {
    let Some(secret) = config.database_secret.clone() else {
        return Ok(());
    };
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(&secret.arn)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(crate::aws::error_chain(&e)))
        .with_context(|| format!("reading the database secret {}", secret.arn))?;
    let text = out
        .secret_string()
        .context("the database secret has no SecretString")?;
    let value: serde_json::Value =
        serde_json::from_str(text).context("the database secret is not JSON")?;
    let user = value
        .get("username")
        .and_then(|v| v.as_str())
        .unwrap_or(&secret.user);
    let password = value
        .get("password")
        .and_then(|v| v.as_str())
        .context("the database secret has no `password`")?;
    config.database_url = database_url(user, password, &secret);
    Ok(())
}

fn database_url(user: &str, password: &str, s: &crate::config::DatabaseSecret) -> String {
    format!(
        "postgres://{}:{}@{}:{}/{}?sslmode={}",
        percent_encode(user),
        percent_encode(password),
        s.host,
        s.port,
        percent_encode(&s.name),
        percent_encode(&s.sslmode)
    )
}

/// RDS passwords contain punctuation: everything but unreserved characters is escaped.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSecret;

    #[test]
    fn builds_an_escaped_url() {
        let s = DatabaseSecret {
            arn: "arn".into(),
            host: "db.internal".into(),
            port: 5432,
            name: "xlport".into(),
            user: "xlport".into(),
            sslmode: "require".into(),
        };
        let url = database_url("xl port", "p@ss:w/rd%", &s);
        assert_eq!(
            url,
            "postgres://xl%20port:p%40ss%3Aw%2Frd%25@db.internal:5432/xlport?sslmode=require"
        );
        let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        assert_eq!(opts.get_username(), "xl port");
        assert_eq!(opts.get_host(), "db.internal");
    }
}
