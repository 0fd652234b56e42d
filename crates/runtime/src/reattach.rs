//! Reattach configurations: how a host connects to a plugin it did not start.

use rpcplugin_handshake::Network;
use rpcplugin_transport::Addr;
use serde::{Deserialize, Serialize};

/// A running plugin's coordinates, in the JSON shape go-plugin hosts (and
/// Terraform's `TF_REATTACH_PROVIDERS`) read.
///
/// ```
/// use rpcplugin_runtime::ReattachConfig;
/// let json = r#"{"Protocol":"grpc","ProtocolVersion":6,"Pid":12345,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin1"}}"#;
/// let cfg: ReattachConfig = serde_json::from_str(json).unwrap();
/// assert_eq!(cfg.protocol_version, 6);
/// assert_eq!(serde_json::to_string(&cfg).unwrap(), json);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReattachConfig {
    /// `grpc` (empty means net/rpc to Go hosts).
    pub protocol: String,
    /// The negotiated app protocol version.
    #[serde(default)]
    pub protocol_version: u32,
    /// The plugin's process id.
    pub pid: u32,
    /// True when the host must never stop the plugin.
    #[serde(default)]
    pub test: bool,
    /// Where the plugin listens.
    pub addr: ReattachAddr,
}

/// The `Addr` object of a reattach configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReattachAddr {
    /// `unix` or `tcp`.
    pub network: String,
    /// Socket path or host:port.
    pub string: String,
}

impl ReattachConfig {
    /// A gRPC reattach configuration for a plugin at `addr`.
    ///
    /// ```
    /// use rpcplugin_runtime::ReattachConfig;
    /// use rpcplugin_transport::Addr;
    /// let cfg = ReattachConfig::new(1, &Addr::Unix("/tmp/p".into()), 42, true);
    /// assert_eq!(cfg.addr.network, "unix");
    /// ```
    pub fn new(version: u32, addr: &Addr, pid: u32, test: bool) -> ReattachConfig {
        ReattachConfig {
            protocol: "grpc".into(),
            protocol_version: version,
            pid,
            test,
            addr: ReattachAddr {
                network: addr.network().to_string(),
                string: addr.to_string(),
            },
        }
    }

    /// The address to dial.
    pub fn addr(&self) -> Result<Addr, crate::Error> {
        let reattach = |source: Box<dyn std::error::Error + Send + Sync>| crate::Error::Reattach {
            pid: self.pid,
            source,
        };
        let network: Network = self
            .addr
            .network
            .parse()
            .map_err(|e| reattach(Box::new(e)))?;
        Addr::parse(network, &self.addr.string).map_err(|e| reattach(Box::new(e)))
    }

    /// The value of `TF_REATTACH_PROVIDERS` for one provider `source`
    /// (e.g. `registry.terraform.io/hashicorp/foo`).
    ///
    /// ```
    /// use rpcplugin_runtime::ReattachConfig;
    /// use rpcplugin_transport::Addr;
    /// let cfg = ReattachConfig::new(6, &Addr::Unix("/tmp/p".into()), 7, true);
    /// assert!(cfg.tf_reattach_providers("hashicorp/foo").starts_with(r#"{"hashicorp/foo":{"Protocol":"grpc""#));
    /// ```
    pub fn tf_reattach_providers(&self, source: &str) -> String {
        let map = std::collections::BTreeMap::from([(source, self)]);
        serde_json::to_string(&map).unwrap_or_default()
    }
}
