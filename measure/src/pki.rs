//! Manual-TLS material for the matrix: per key type, a CA and a server and
//! client certificate it signed, as PEM files.

use anyhow::{Context, Result};
use rpcplugin_certs::KeyType;
use rpcplugin_certs::internal::DevPki;
use std::path::Path;

/// Writes `ca.pem`, `server.pem`/`server.key` and `client.pem`/`client.key`
/// under `dir/<key type>/` for each key type (matrix names: p256, rsa2048...).
pub(crate) fn write_all(dir: &Path, key_types: &[&str]) -> Result<()> {
    for name in key_types {
        let key_type: KeyType = name.parse()?;
        DevPki::generate(key_type)?
            .write_to(&dir.join(name))
            .with_context(|| format!("writing the {name} PKI"))?;
    }
    Ok(())
}
