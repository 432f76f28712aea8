use std::path::Path;

/// Errors from parsing and building data sets. Every message is one line naming the input, what
/// was wrong and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A configuration value is out of range or inconsistent: `{subject}: {problem}`.
    #[error("{subject}: {problem}")]
    Invalid { subject: String, problem: String },
    #[error("image '{path}': cannot read file: {reason}")]
    ImageRead { path: String, reason: String },
    #[error("image '{path}': not a readable image: {reason}; expected a PNG or JPEG file")]
    ImageDecode { path: String, reason: String },
    #[error("csv '{path}': {problem}")]
    Csv { path: String, problem: String },
    /// MNIST: `path` is the directory or the IDX file concerned.
    #[error("mnist '{path}': {problem}")]
    Mnist { path: String, problem: String },
    #[error("{subject} '{text}': could not parse expression: {reason}; expected {expected}")]
    Expression { subject: String, text: String, reason: String, expected: String },
    #[error("unknown data set '{given}'; expected one of: {known}")]
    UnknownKind { given: String, known: String },
}

impl DataError {
    pub(crate) fn invalid(subject: impl Into<String>, problem: impl Into<String>) -> Self {
        DataError::Invalid { subject: one_line(&subject.into()), problem: one_line(&problem.into()) }
    }

    pub(crate) fn mnist(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Mnist { path: path.display().to_string(), problem: one_line(&problem.into()) }
    }

    pub(crate) fn csv(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Csv { path: path.display().to_string(), problem: one_line(&problem.into()) }
    }
}

/// Messages from other crates may span lines; ours must not.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `std::io::Error` appends "(os error N)", which says nothing to a user.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    one_line(&s)
}
