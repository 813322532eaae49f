//! `GET /datasets`: what can be imported and exported.

use lambda_http::{Body, Response};
use xlport_contract::DatasetView;
use xlport_core::job::{Access, Caller};
use xlport_core::ports::Ports;
use xlport_core::{Dataset, JobKind};

use crate::{ApiError, App, json_response, views};

impl<P: Ports> App<P> {
    /// The datasets the caller's key may use (docs/spec/datasets.md, "Access").
    pub(crate) fn datasets(&self, access: &Access) -> Response<Body> {
        let list: Vec<DatasetView> = self
            .datasets
            .iter()
            .filter(|d| access.may_use(&d.name))
            .map(views::dataset)
            .collect();
        json_response(200, &list)
    }

    /// The dataset `name` for a new job of `kind` by `caller`. A dataset
    /// that is not configured and one the key may not use are the same 404,
    /// listing the datasets the key may use; a key that may not create jobs
    /// of `kind` is a 403 saying so.
    pub(crate) fn dataset_for(
        &self,
        caller: &Caller,
        name: &str,
        kind: JobKind,
    ) -> Result<&Dataset, ApiError> {
        let access = &caller.access;
        let dataset = self
            .datasets
            .get(name)
            .filter(|d| access.may_use(&d.name))
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .datasets
                    .names()
                    .filter(|n| access.may_use(n))
                    .collect();
                ApiError::NotFoundSaying(format!(
                    "unknown dataset `{}`; known datasets: {}",
                    xlport_core::job::clip(name, 40),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
        if !access.may_create(kind) {
            return Err(ApiError::Forbidden(format!(
                "this API key may not create {kind} jobs; ask for a key that may"
            )));
        }
        Ok(dataset)
    }
}
