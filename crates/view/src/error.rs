use std::fmt;

/// A one-line error from plotting, text drawing or image output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError(pub String);

impl ViewError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        ViewError(msg.into())
    }
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ViewError {}
