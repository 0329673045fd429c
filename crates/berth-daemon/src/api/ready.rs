//! What a request needs before it can be served: the run's services, which exist once storage
//! is prepared (until then the answer is `starting`).

use berth_proto::ErrorCode;

use super::ApiFailure;
use crate::services::Services;
use crate::state::Shared;

/// The run's services, or `503 starting`.
pub fn services(shared: &Shared) -> Result<&Services, ApiFailure> {
    shared
        .services()
        .ok_or_else(|| ApiFailure::unavailable(ErrorCode::Starting))
}
