//! A small private CA for manual TLS: one CA, one server and one client
//! certificate signed by it. Meant for development setups, tests and the
//! cross-language matrix; production deployments bring their own PKI.

use crate::identity::new_key_pair;
use crate::{CertError, Identity, KeyType};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use std::path::Path;

/// A CA and the server and client identities it signed, all of one key type.
///
/// The server certificate is valid for `localhost` and `127.0.0.1`, with
/// EKU serverAuth; the client's has EKU clientAuth.
///
/// ```
/// use rpcplugin_certs::internal::DevPki;
/// use rpcplugin_certs::{KeyType, PeerTrust, client_config, server_config};
/// let pki = DevPki::generate(KeyType::EcP256)?;
/// let server = server_config(&pki.server, PeerTrust::Roots(vec![pki.ca_cert()?]))?;
/// let client = client_config(Some(&pki.client), PeerTrust::Roots(vec![pki.ca_cert()?]))?;
/// # let _ = (server, client);
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// A server identity signed by the CA.
    pub server: Identity,
    /// A client identity signed by the CA.
    pub client: Identity,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "rpcplugin development CA");
    dn.push(DnType::CommonName, cn);
    dn
}

impl DevPki {
    /// Generates the CA and both identities.
    pub fn generate(key_type: KeyType) -> Result<DevPki, CertError> {
        let fail = |reason: String| CertError::Generate { key_type, reason };
        let ca_key = new_key_pair(key_type).map_err(|e| fail(format!("CA key: {e}")))?;
        let mut ca =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(e.to_string()))?;
        ca.distinguished_name = name(&format!("rpcplugin development CA {key_type}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca
            .self_signed(&ca_key)
            .map_err(|e| fail(format!("CA: {e}")))?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |role: &str, eku: ExtendedKeyUsagePurpose| -> Result<Identity, CertError> {
            let key = new_key_pair(key_type).map_err(|e| fail(format!("{role} key: {e}")))?;
            let mut params = CertificateParams::new(vec!["localhost".to_owned()])
                .map_err(|e| fail(e.to_string()))?;
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
            params.distinguished_name = name(&format!("localhost {role}"));
            params.extended_key_usages = vec![eku];
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            let cert = params
                .signed_by(&key, &issuer)
                .map_err(|e| fail(format!("{role}: {e}")))?;
            Identity::from_generated(cert.der().clone(), &key)
        };
        Ok(DevPki {
            server: leaf("server", ExtendedKeyUsagePurpose::ServerAuth)?,
            client: leaf("client", ExtendedKeyUsagePurpose::ClientAuth)?,
            ca_pem,
        })
    }

    /// The CA certificate, DER.
    pub fn ca_cert(&self) -> Result<CertificateDer<'static>, CertError> {
        crate::parse_cert_pem(self.ca_pem.as_bytes())
    }

    /// Writes `ca.pem`, `server.pem`, `server.key`, `client.pem` and
    /// `client.key` into `dir` (created if missing; keys mode 0600 on unix).
    pub fn write_to(&self, dir: &Path) -> Result<(), CertError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CertError::WriteFile { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let files = [
            ("ca.pem", self.ca_pem.clone()),
            ("server.pem", self.server.cert_pem()),
            ("server.key", self.server.key_pem()),
            ("client.pem", self.client.cert_pem()),
            ("client.key", self.client.key_pem()),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
            #[cfg(unix)]
            if name.ends_with(".key") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&path))?;
            }
        }
        Ok(())
    }
}
