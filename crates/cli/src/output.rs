//! What a command reports: one JSON object on stdout with `--json`, and failures with a
//! code from the one vocabulary.

use cyberid_protocol::ErrorCode;

/// A failure to report: with `--json` as `{"error", "error_description"}` on stdout. The
/// code is one of [`ErrorCode`], or a platform's refusal passed on as the platform sent it.
pub struct Failure {
    pub code: String,
    pub description: String,
}

impl Failure {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            description: description.into(),
        }
    }
}

/// An argument that is well-formed but unusable (a file that cannot be read, a PIN that
/// breaks the rules, an unknown claim).
pub fn invalid_input(description: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::InvalidInput, description)
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::new(ErrorCode::Failed, error.to_string())
    }
}

pub type CliResult = Result<(), Failure>;

/// Prints `value` as the command's one JSON object.
pub fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode output: {e}"),
    }
}
