//! `GET /status/{list}`: a Token Status List (2 bits per credential: valid, invalid,
//! suspended) built from the store's non-valid entries and signed on request, so a
//! revocation shows at once.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cyberid_crypto::status_list::{self, StatusList};
use cyberid_store::STATUS_LIST_CAPACITY;

use crate::credential::status_list_uri;
use crate::error::{ApiError, ErrorCode};
use crate::platform::Platform;

/// Lists beyond this are refused: 4 billion credentials is far past any population.
const MAX_LIST: u64 = u32::MAX as u64 / STATUS_LIST_CAPACITY;

pub async fn status_list(
    State(platform): State<Platform>,
    Path(list): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such status list");
    let list: u64 = list
        .parse()
        .ok()
        .filter(|list| *list <= MAX_LIST)
        .ok_or_else(not_found)?;
    // Lists past the last issued credential do not exist yet: building and signing them on
    // request would be free work for anyone.
    let last_list = platform.store.max_status_index().await?.unwrap_or(0) / STATUS_LIST_CAPACITY;
    if list > last_list {
        return Err(not_found());
    }
    let mut bits = StatusList::new(2, STATUS_LIST_CAPACITY as usize)
        .map_err(|e| ApiError::internal("status list", e))?;
    for (index, status) in platform.store.credential_statuses(list).await? {
        bits.set(index as usize, status)
            .map_err(|e| ApiError::internal("status list entry", e))?;
    }
    let token = status_list::sign_token(
        platform.keys.current_issuer(),
        &status_list_uri(&platform.issuer, list),
        &bits,
        crate::now(),
        platform.settings.credential.status_list_ttl_seconds,
    )
    .map_err(|e| ApiError::internal("status list signature", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/statuslist+jwt"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        token,
    )
        .into_response())
}
