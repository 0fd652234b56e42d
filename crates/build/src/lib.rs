//! Compiles your `.proto` files for [rpcplugin](https://docs.rs/rpcplugin)
//! in `build.rs`, without `protoc`.
//!
//! [protox](https://docs.rs/protox) parses the protos in-process and
//! [tonic-prost-build](https://docs.rs/tonic-prost-build) writes the
//! messages, the client and the server. The generated code refers to tonic
//! and prost through the `rpcplugin` facade (`::rpcplugin::tonic`,
//! `::rpcplugin::prost`), so your crate depends on `rpcplugin` alone and
//! never has to match tonic or prost versions.
//!
//! In `build.rs` (with `rpcplugin-build` under `[build-dependencies]`):
//!
//! ```no_run
//! fn main() -> Result<(), rpcplugin_build::Error> {
//!     rpcplugin_build::compile_protos(["proto/greeter.proto"], ["proto"])
//! }
//! ```
//!
//! and where you want the generated code (one module per proto package):
//!
//! ```ignore
//! pub mod greeter {
//!     rpcplugin::include_proto!("greeter");
//! }
//! ```
//!
//! The guide walks through a whole plugin and host:
//! <https://github.com/rpcplugin/rpcplugin/blob/main/docs/guide.md>.

#![warn(unreachable_pub)]

mod error;
mod paths;

use std::path::{Path, PathBuf};

pub use crate::error::Error;

/// The crate the generated code reaches tonic and prost through.
const FACADE: &str = "::rpcplugin";

/// Compiles `protos` (paths of `.proto` files) for a plugin and a host: the
/// messages, the client and the server, into `OUT_DIR`.
///
/// `includes` are the directories imports are resolved against; each proto
/// must be inside one of them. Call it from `build.rs`; it tells Cargo to
/// run the build script again when one of the protos or their imports
/// changes. Include the result with
/// `rpcplugin::include_proto!("<proto package>")`.
///
/// # Errors
///
/// [`Error::Compile`] for a proto that does not parse or resolve (the
/// message names the file, line and column), [`Error::NoOutDir`] outside a
/// build script, [`Error::Generate`] or [`Error::Io`] when the code cannot be
/// written.
///
/// # Example
///
/// ```no_run
/// // build.rs
/// fn main() -> Result<(), rpcplugin_build::Error> {
///     rpcplugin_build::compile_protos(["proto/greeter.proto"], ["proto"])
/// }
/// ```
pub fn compile_protos(
    protos: impl IntoIterator<Item = impl AsRef<Path>>,
    includes: impl IntoIterator<Item = impl AsRef<Path>>,
) -> Result<(), Error> {
    Builder::new().compile(protos, includes).map(drop)
}

/// Options for [`compile_protos`]: where the code goes and which sides to
/// generate.
///
/// ```no_run
/// // A host-only crate: no server code.
/// rpcplugin_build::Builder::new()
///     .build_server(false)
///     .compile(["proto/greeter.proto"], ["proto"])?;
/// # Ok::<(), rpcplugin_build::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    client: bool,
    server: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Client and server code, written to `OUT_DIR`.
    pub fn new() -> Builder {
        Builder {
            out_dir: None,
            client: true,
            server: true,
        }
    }

    /// Writes the code to `dir` instead of `OUT_DIR`, and prints no
    /// `cargo:rerun-if-changed` lines (for use outside a build script).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to generate clients, used by hosts (default true).
    pub fn build_client(mut self, enable: bool) -> Builder {
        self.client = enable;
        self
    }

    /// Whether to generate servers, used by plugins (default true).
    pub fn build_server(mut self, enable: bool) -> Builder {
        self.server = enable;
        self
    }

    /// Compiles `protos` against `includes` (see [`compile_protos`]) and
    /// returns the paths of the files written, one per proto package
    /// (`<package>.rs`).
    ///
    /// # Errors
    ///
    /// As for [`compile_protos`].
    pub fn compile(
        self,
        protos: impl IntoIterator<Item = impl AsRef<Path>>,
        includes: impl IntoIterator<Item = impl AsRef<Path>>,
    ) -> Result<Vec<PathBuf>, Error> {
        let in_build_script = self.out_dir.is_none();
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let mut compiler = protox::Compiler::new(includes).map_err(Error::compile)?;
        compiler.include_imports(true).include_source_info(true);
        for proto in protos {
            compiler.open_file(proto).map_err(Error::compile)?;
        }
        if in_build_script {
            for path in compiler.files().filter_map(|file| file.path()) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let fds = compiler.file_descriptor_set();

        // Generate into a scratch directory, then write the files with
        // their tonic paths pointed at the facade.
        let scratch = out_dir.join(".rpcplugin-build");
        remove_dir(&scratch)?;
        std::fs::create_dir_all(&scratch).map_err(Error::io("create", &scratch))?;
        let mut config = tonic_prost_build::Config::new();
        config.prost_path(format!("{FACADE}::prost"));
        tonic_prost_build::configure()
            .build_client(self.client)
            .build_server(self.server)
            .codec_path(format!("{FACADE}::tonic_prost::ProstCodec"))
            .emit_rerun_if_changed(false)
            .out_dir(&scratch)
            .compile_fds_with_config(fds, config)
            .map_err(Error::Generate)?;
        let written = paths::rewrite_dir(&scratch, &out_dir, FACADE)?;
        remove_dir(&scratch)?;
        Ok(written)
    }
}

fn remove_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("remove", dir)(err))
        }
        _ => Ok(()),
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
