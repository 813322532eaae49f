//! Building the AWS SDK clients from the typed configuration.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::{Credentials, RequestChecksumCalculation, ResponseChecksumValidation};

use crate::config::{Config, Profile};

pub async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone()));
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    // LocalStack accepts any credentials; don't make a local user set them.
    if config.profile == Profile::Local && std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "xlport-local",
        ));
    }
    loader.load().await
}

pub fn s3_client(sdk: &aws_config::SdkConfig, config: &Config) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(sdk)
        // LocalStack is reached by IP: no virtual-host bucket names.
        .force_path_style(config.aws_endpoint_url.is_some())
        // Presigned URLs must not carry SDK-computed checksums of an empty
        // body: curl and browsers send the real bytes.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(sdk)
}

/// The full chain of an SDK error, which `Display` alone hides.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
