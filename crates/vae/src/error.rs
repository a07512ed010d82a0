//! The errors that come from outside the program: files, data, checkpoints, settings.

use std::path::PathBuf;

use thiserror::Error;

/// Why a `vae` operation on outside input failed. Each variant's message is one line that
/// names the file (where there is one) and the problem.
#[derive(Debug, Error)]
pub enum VaeError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A data file whose contents are not what its format requires.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A checkpoint that cannot be used with this model or run.
    #[error("checkpoint {}: {msg}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not match.
        msg: String,
    },
    /// An image that could not be encoded.
    #[error("{}: cannot encode the image: {msg}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The encoder's complaint.
        msg: String,
    },
    /// A data set built from parts that do not fit together (sizes, counts).
    #[error("inconsistent data set: {0}")]
    Dataset(String),
    /// A setting that cannot work (for example a batch size of 0). Only for the run's
    /// configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Training produced a non-finite loss.
    #[error("{0}")]
    NonFinite(String),
    /// A library function given arguments that do not fit it (shapes, lengths, counts), or
    /// a problem it cannot solve (a singular system).
    #[error("{op}: {msg}")]
    Invalid {
        /// The function.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// A tensor operation refused its operands.
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

impl VaeError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VaeError::Io { path: path.into(), source }
    }

    /// The process's exit code for this error: 2 for a setting the command line asked for
    /// (as for a flag the parser refuses), 1 for anything else (files, data, training).
    pub fn exit_code(&self) -> u8 {
        match self {
            VaeError::Config(_) => 2,
            _ => 1,
        }
    }

    /// Prints this error as the program's one line, `error: …`, on standard error, and
    /// gives the exit code to end with.
    pub fn report(&self) -> std::process::ExitCode {
        eprintln!("error: {self}");
        std::process::ExitCode::from(self.exit_code())
    }

    /// Arguments `op` was given that do not fit it (the [`VaeError::Invalid`] variant).
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        VaeError::Invalid { op, msg: msg.into() }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        VaeError::Format { path: path.into(), msg: msg.into() }
    }
}

/// Result of a `vae` operation.
pub type Result<T> = std::result::Result<T, VaeError>;
