//! `GET /datasets`: what can be imported and exported.

use lambda_http::{Body, Response};
use xlport_contract::DatasetView;
use xlport_core::ports::Ports;

use crate::{ApiError, App, json_response, views};

impl<P: Ports> App<P> {
    pub(crate) fn datasets(&self) -> Response<Body> {
        let list: Vec<DatasetView> = self.datasets.iter().map(views::dataset).collect();
        json_response(200, &list)
    }

    /// A 400 for a dataset that is not configured, listing those that are.
    pub(crate) fn unknown_dataset(&self, name: &str) -> ApiError {
        let known: Vec<&str> = self.datasets.names().collect();
        ApiError::BadRequest(format!(
            "unknown dataset `{}`; known datasets: {}",
            xlport_core::job::clip(name, 40),
            known.join(", ")
        ))
    }
}
