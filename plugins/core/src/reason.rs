//! Reason codes: every reply Tollgate makes itself on a request it refuses (or cannot serve) names one
//! stable code, in the JSON body's `error.code` and in the `x-tollgate-reason` header, so a caller can
//! tell a bad key from a scope, a limit or an IP block without reading logs. Each plugin lists the codes it
//! produces (`REASONS`) with what they mean and what to do; the README's troubleshooting table is checked
//! against those lists.

/// The response header that carries the reason code of a reply Tollgate made itself.
pub const REASON_HEADER: &str = "x-tollgate-reason";

/// One documented reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The code, as in `error.code` and `x-tollgate-reason`.
    pub code: &'static str,
    /// The HTTP status the client gets (the most common one when it varies).
    pub status: u16,
    /// What happened, for the troubleshooting table.
    pub meaning: &'static str,
    /// What the caller or operator should do.
    pub action: &'static str,
}
