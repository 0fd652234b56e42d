//! Key types: names, parsing, and recognising a certificate's key.

use std::fmt;
use std::str::FromStr;

use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::CertError;

/// The kind of key an [`Identity`](crate::Identity) is made with.
///
/// The default, [`KeyType::EcP256`], is the cheapest to generate and is
/// accepted by every known peer (Go, grpcio/BoringSSL, rustls). go-plugin
/// itself generates P-521; grpcio cannot verify P-521 signatures.
///
/// # Example
///
/// ```
/// use rpcplugin_certs::KeyType;
///
/// let kt: KeyType = "secp384r1".parse()?;
/// assert_eq!(kt, KeyType::EcP384);
/// assert_eq!(kt.to_string(), "P-384");
/// assert_eq!("auto".parse::<KeyType>()?, KeyType::default());
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyType {
    /// ECDSA on NIST P-256 (secp256r1), certificate signed with SHA-256.
    #[default]
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1), certificate signed with SHA-384.
    EcP384,
    /// ECDSA on NIST P-521 (secp521r1), certificate signed with SHA-512, as
    /// go-plugin's AutoMTLS does.
    EcP521,
    /// RSA with a 2048-bit modulus, certificate signed with SHA-256.
    Rsa2048,
    /// RSA with a 3072-bit modulus, certificate signed with SHA-256.
    Rsa3072,
    /// RSA with a 4096-bit modulus, certificate signed with SHA-256
    /// (generation takes around a second).
    Rsa4096,
}

/// Every accepted spelling (lower case) and what it means.
const SPELLINGS: &[(&str, KeyType)] = &[
    ("auto", KeyType::EcP256),
    ("p256", KeyType::EcP256),
    ("p-256", KeyType::EcP256),
    ("p_256", KeyType::EcP256),
    ("ec256", KeyType::EcP256),
    ("ec-256", KeyType::EcP256),
    ("ec_256", KeyType::EcP256),
    ("ecp256", KeyType::EcP256),
    ("secp256r1", KeyType::EcP256),
    ("prime256v1", KeyType::EcP256),
    ("p384", KeyType::EcP384),
    ("p-384", KeyType::EcP384),
    ("p_384", KeyType::EcP384),
    ("ec384", KeyType::EcP384),
    ("ec-384", KeyType::EcP384),
    ("ec_384", KeyType::EcP384),
    ("ecp384", KeyType::EcP384),
    ("secp384r1", KeyType::EcP384),
    ("p521", KeyType::EcP521),
    ("p-521", KeyType::EcP521),
    ("p_521", KeyType::EcP521),
    ("ec521", KeyType::EcP521),
    ("ec-521", KeyType::EcP521),
    ("ec_521", KeyType::EcP521),
    ("ecp521", KeyType::EcP521),
    ("secp521r1", KeyType::EcP521),
    ("rsa2048", KeyType::Rsa2048),
    ("rsa-2048", KeyType::Rsa2048),
    ("rsa_2048", KeyType::Rsa2048),
    ("rsa3072", KeyType::Rsa3072),
    ("rsa-3072", KeyType::Rsa3072),
    ("rsa_3072", KeyType::Rsa3072),
    ("rsa4096", KeyType::Rsa4096),
    ("rsa-4096", KeyType::Rsa4096),
    ("rsa_4096", KeyType::Rsa4096),
];

/// The accepted spellings, comma-separated, for error messages.
pub(crate) fn valid_key_type_names() -> String {
    let names: Vec<&str> = SPELLINGS.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

impl KeyType {
    /// Every key type, cheapest to generate first.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::KeyType;
    ///
    /// assert_eq!(KeyType::ALL.len(), 6);
    /// assert_eq!(KeyType::ALL[0], KeyType::default());
    /// ```
    pub const ALL: [KeyType; 6] = [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::EcP521,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The display name: `"P-256"`, `"P-384"`, `"P-521"`, `"RSA-2048"`,
    /// `"RSA-3072"` or `"RSA-4096"`. [`FromStr`] accepts it back.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::KeyType;
    ///
    /// assert_eq!(KeyType::Rsa2048.name(), "RSA-2048");
    /// assert_eq!(KeyType::Rsa2048.name().parse::<KeyType>()?, KeyType::Rsa2048);
    /// # Ok::<(), rpcplugin_certs::CertError>(())
    /// ```
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            KeyType::EcP256 => "P-256",
            KeyType::EcP384 => "P-384",
            KeyType::EcP521 => "P-521",
            KeyType::Rsa2048 => "RSA-2048",
            KeyType::Rsa3072 => "RSA-3072",
            KeyType::Rsa4096 => "RSA-4096",
        }
    }

    /// Whether this is one of the RSA key types.
    ///
    /// # Example
    ///
    /// ```
    /// use rpcplugin_certs::KeyType;
    ///
    /// assert!(KeyType::Rsa3072.is_rsa());
    /// assert!(!KeyType::EcP521.is_rsa());
    /// ```
    #[must_use]
    pub const fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = CertError;

    /// Parses a key type name, ignoring case and surrounding whitespace.
    /// `"auto"` means the default, P-256.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        SPELLINGS
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, key_type)| *key_type)
            .ok_or_else(|| CertError::UnknownKeyType {
                input: s.to_owned(),
            })
    }
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Human names for public key algorithms we recognise but do not support.
const OTHER_ALGORITHMS: &[(&str, &str)] = &[
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.2.840.10046.2.1", "Diffie-Hellman"),
    ("1.2.156.10197.1.301", "SM2"),
];

/// Curves: supported ones map to a key type, others just to a name.
const CURVES: &[(&str, &str, Option<KeyType>)] = &[
    ("1.2.840.10045.3.1.7", "P-256", Some(KeyType::EcP256)),
    ("1.3.132.0.34", "P-384", Some(KeyType::EcP384)),
    ("1.3.132.0.35", "P-521", Some(KeyType::EcP521)),
    ("1.3.132.0.10", "secp256k1", None),
    ("1.2.840.10045.3.1.1", "P-192", None),
    ("1.3.132.0.33", "P-224", None),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1", None),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1", None),
    ("1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1", None),
];

/// Tells which [`KeyType`] a DER certificate's public key has.
///
/// Used to report what a peer presented. Keys this crate cannot make give a
/// typed error naming the algorithm or curve OID
/// ([`CertError::UnsupportedAlgorithm`], [`CertError::UnsupportedCurve`],
/// [`CertError::UnsupportedRsaKeySize`]); bytes that are not a certificate
/// give [`CertError::BadCertificate`].
///
/// # Example
///
/// ```
/// use rpcplugin_certs::{Identity, KeyType, cert_key_type};
///
/// let identity = Identity::generate(KeyType::EcP521)?;
/// assert_eq!(cert_key_type(identity.cert_der())?, KeyType::EcP521);
/// assert!(cert_key_type(b"not DER").is_err());
/// # Ok::<(), rpcplugin_certs::CertError>(())
/// ```
pub fn cert_key_type(der: &[u8]) -> Result<KeyType, CertError> {
    let cert = crate::pem::parse_x509(der)?;
    spki_key_type(cert.public_key())
}

/// The key type of a parsed SubjectPublicKeyInfo.
pub(crate) fn spki_key_type(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyType, CertError> {
    let algorithm = spki.algorithm.algorithm.to_id_string();
    if algorithm == OID_EC_PUBLIC_KEY {
        let Some(params) = spki.algorithm.parameters.as_ref() else {
            return Err(CertError::UnsupportedCurve {
                oid: "none".to_owned(),
                name: "missing curve parameter",
            });
        };
        let Ok(curve) = params.as_oid() else {
            return Err(CertError::UnsupportedCurve {
                oid: "none".to_owned(),
                name: "explicit curve parameters",
            });
        };
        let curve = curve.to_id_string();
        return match CURVES.iter().find(|(oid, _, _)| *oid == curve) {
            Some((_, _, Some(key_type))) => Ok(*key_type),
            Some((_, name, None)) => Err(CertError::UnsupportedCurve { oid: curve, name }),
            None => Err(CertError::UnsupportedCurve {
                oid: curve,
                name: "unknown",
            }),
        };
    }
    if algorithm == OID_RSA_ENCRYPTION {
        let bits = rsa_modulus_bits(&spki.subject_public_key.data)?;
        return match bits {
            2048 => Ok(KeyType::Rsa2048),
            3072 => Ok(KeyType::Rsa3072),
            4096 => Ok(KeyType::Rsa4096),
            bits => Err(CertError::UnsupportedRsaKeySize { bits }),
        };
    }
    let name = OTHER_ALGORITHMS
        .iter()
        .find(|(oid, _)| *oid == algorithm)
        .map_or("unknown", |(_, name)| *name);
    Err(CertError::UnsupportedAlgorithm {
        oid: algorithm,
        name,
    })
}

/// The size in bits of the modulus of a DER `RSAPublicKey`.
fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<usize, CertError> {
    let bad = |reason: String| CertError::BadCertificate {
        reason: format!("malformed RSA public key: {reason}"),
    };
    let (_, key) = x509_parser::public_key::RSAPublicKey::from_der(rsa_public_key)
        .map_err(|e| bad(e.to_string()))?;
    let modulus = key.modulus;
    let first_nonzero = modulus.iter().position(|b| *b != 0);
    let Some(start) = first_nonzero else {
        return Err(bad("zero modulus".to_owned()));
    };
    let significant = modulus.get(start..).unwrap_or_default();
    let leading_bits = significant
        .first()
        .map_or(0, |b| b.leading_zeros() as usize);
    Ok(significant.len() * 8 - leading_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER `RSAPublicKey` with the given modulus bytes and exponent 65537.
    fn rsa_public_key(modulus: &[u8]) -> Vec<u8> {
        let mut integer = vec![0x02, 0x81, u8::try_from(modulus.len()).unwrap()];
        integer.extend_from_slice(modulus);
        let exponent = [0x02, 0x03, 0x01, 0x00, 0x01];
        let mut der = vec![
            0x30,
            0x81,
            u8::try_from(integer.len() + exponent.len()).unwrap(),
        ];
        der.extend_from_slice(&integer);
        der.extend_from_slice(&exponent);
        der
    }

    #[test]
    fn rsa_modulus_sizes() {
        let mut modulus = vec![0x00, 0xc0];
        modulus.extend_from_slice(&[0x01; 127]);
        assert_eq!(rsa_modulus_bits(&rsa_public_key(&modulus)).unwrap(), 1024);
        modulus.remove(0);
        modulus[0] = 0x40;
        assert_eq!(rsa_modulus_bits(&rsa_public_key(&modulus)).unwrap(), 1023);
        assert!(rsa_modulus_bits(&rsa_public_key(&[0x00, 0x00])).is_err());
        assert!(rsa_modulus_bits(b"junk").is_err());
    }

    #[test]
    fn every_spelling_parses_and_display_round_trips() {
        for (name, key_type) in SPELLINGS {
            assert_eq!(name.parse::<KeyType>().unwrap(), *key_type, "{name}");
            assert_eq!(
                name.to_ascii_uppercase().parse::<KeyType>().unwrap(),
                *key_type
            );
        }
        for key_type in KeyType::ALL {
            assert_eq!(key_type.to_string().parse::<KeyType>().unwrap(), key_type);
        }
    }
}
