//! The error of a proto compilation.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why the protos could not be compiled.
///
/// `Debug` prints the message and its causes, so a build script's
/// `fn main() -> Result<(), rpcplugin_build::Error>` shows a readable error.
#[non_exhaustive]
#[derive(thiserror::Error)]
pub enum Error {
    /// A proto does not parse, an import is missing, or a file is outside
    /// every include directory.
    #[error("cannot compile the protos: {0}")]
    Compile(#[source] Box<protox::Error>),

    /// `OUT_DIR` is not set: the call did not come from a build script and
    /// no [`Builder::out_dir`](crate::Builder::out_dir) was given.
    #[error("OUT_DIR is not set: call rpcplugin_build from build.rs, or give Builder::out_dir")]
    NoOutDir,

    /// tonic-prost-build could not generate or write the code.
    #[error("cannot generate Rust code from the protos")]
    Generate(#[source] std::io::Error),

    /// Reading or writing a generated file failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: `read`, `write`, `create`, `remove`, `list`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn compile(err: protox::Error) -> Error {
        Error::Compile(Box::new(err))
    }

    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_message_and_its_causes() {
        let err = Error::io("write", Path::new("/out/greeter.rs"))(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "permission denied",
        ));
        assert_eq!(
            format!("{err:?}"),
            "cannot write /out/greeter.rs\n  caused by: permission denied"
        );
    }
}
