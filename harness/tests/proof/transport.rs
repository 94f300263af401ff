//! Proof cases for the `transport` and `sessions` areas: each check against the reference server
//! with exactly its control switched off.

use super::common::Case;

pub fn cases() -> Vec<Case> {
    vec![
        Case::fault("transport/origin-forbidden", "origin-check"),
        Case::fault("transport/origin-null-refused", "origin-null"),
        Case::fault("transport/host-validated", "host-check"),
        Case::fault("transport/version-header-invalid", "version-header-check"),
        Case::fault("transport/version-header-missing", "version-header-fallback"),
        Case::fault("transport/notification-202", "notification-202"),
        Case::fault("transport/response-content-type", "response-content-type"),
        Case::fault("transport/get-stream", "get-stream"),
        Case::fault("transport/sse-event-ids", "sse-event-ids"),
        Case::fault("transport/body-limit", "body-limit"),
        Case::fault("sessions/id-charset", "session-id-charset"),
        Case::fault("sessions/id-entropy", "session-entropy"),
        Case::fault("sessions/missing-id-400", "session-required"),
        Case::fault("sessions/unknown-id-404", "session-unknown-accepted"),
        Case::fault("sessions/delete-ends", "session-delete"),
        Case::fault("sessions/ended-id-404", "unknown-session-404"),
        Case::fault("sessions/no-fixation", "session-fixation"),
    ]
}
