//! [`JsonBody`]: the JSON body extractor whose rejections are [`ApiError`]s that name the bad
//! field, instead of axum's plain-text answers.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            // serde's messages name the field ("missing field `password` at line 1 column 9").
            Err(rejection @ JsonRejection::JsonDataError(_)) => {
                Err(ApiError::bad_data(rejection.body_text()))
            }
            Err(rejection) => Err(ApiError::with_status(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}
