//! Key type names.

use rpcplugin_certs::{CertError, KeyType};

#[test]
fn every_listed_spelling_parses() {
    let cases: &[(&[&str], KeyType)] = &[
        (
            &[
                "auto",
                "p256",
                "p-256",
                "ec256",
                "ecp256",
                "secp256r1",
                "prime256v1",
                "ec_256",
                "P-256",
                "AUTO",
                "Prime256v1",
                " p256 ",
            ],
            KeyType::EcP256,
        ),
        (
            &[
                "p384",
                "P-384",
                "secp384r1",
                "ec384",
                "ecp384",
                "ec_384",
                "SECP384R1",
            ],
            KeyType::EcP384,
        ),
        (
            &[
                "p521",
                "P-521",
                "secp521r1",
                "ec521",
                "ecp521",
                "ec_521",
                "EC_521",
            ],
            KeyType::EcP521,
        ),
        (
            &["rsa2048", "rsa-2048", "rsa_2048", "RSA-2048"],
            KeyType::Rsa2048,
        ),
        (
            &["rsa3072", "rsa-3072", "rsa_3072", "RSA-3072"],
            KeyType::Rsa3072,
        ),
        (
            &["rsa4096", "rsa-4096", "rsa_4096", "RSA_4096"],
            KeyType::Rsa4096,
        ),
    ];
    for (spellings, expected) in cases {
        for spelling in *spellings {
            assert_eq!(
                spelling.parse::<KeyType>().unwrap(),
                *expected,
                "{spelling:?}"
            );
        }
    }
}

#[test]
fn display_names() {
    let names: Vec<String> = KeyType::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "P-256", "P-384", "P-521", "RSA-2048", "RSA-3072", "RSA-4096"
        ]
    );
    assert_eq!(KeyType::default(), KeyType::EcP256);
}

#[test]
fn unknown_names_are_refused_with_the_valid_list() {
    for bad in ["", "p512", "rsa1024", "ed25519", "p-256x", "rsa 2048"] {
        let err = bad.parse::<KeyType>().unwrap_err();
        assert!(
            matches!(&err, CertError::UnknownKeyType { input } if input == bad),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("unknown key type {bad:?}; valid names: ")),
            "{text}"
        );
        for name in [
            "auto",
            "p256",
            "prime256v1",
            "secp384r1",
            "ec_521",
            "rsa-2048",
            "rsa_4096",
        ] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
    }
}
