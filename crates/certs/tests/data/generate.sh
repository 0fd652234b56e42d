#!/bin/sh
# Regenerates the committed test certificates with the openssl CLI (3.x).
# Run from this directory. Validity: 2025-01-01 to 2055-01-01, so that a
# slightly wrong clock on a test machine does not matter.
set -eu

start=20250101000000Z
end=20550101000000Z
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# sign NAME KEY DIGEST SUBJECT EXTENSIONS: a self-signed certificate NAME.crt
sign() {
    cat > "$work/req.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
$4
[ext]
$5
[ca]
default_ca = this
[this]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
policy = any
email_in_dn = no
preserve = yes
unique_subject = no
[any]
organizationName = optional
commonName = optional
CNF
    : > "$work/index.txt"
    openssl rand -hex 16 > "$work/serial"
    openssl req -new -config "$work/req.cnf" -key "$2" -out "$work/req.csr"
    openssl ca -batch -notext -selfsign -config "$work/req.cnf" -keyfile "$2" \
        -in "$work/req.csr" -startdate "$start" -enddate "$end" -md "$3" \
        -extensions ext -out "$1.crt"
}

goplugin_ext="basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement, keyCertSign
extendedKeyUsage = clientAuth, serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash"

# go-plugin AutoMTLS shape: P-521, ecdsa-with-SHA512, self-signed CA:TRUE
# leaf, O=HashiCorp CN=localhost, SAN DNS:localhost only. Key as SEC1 and
# as PKCS#8.
openssl ecparam -name secp521r1 -genkey -noout -out goplugin-p521.sec1.key
openssl pkcs8 -topk8 -nocrypt -in goplugin-p521.sec1.key -out goplugin-p521.pkcs8.key
sign goplugin-p521 goplugin-p521.sec1.key sha512 "O = HashiCorp
CN = localhost" "$goplugin_ext"

# The same shape with an RSA-2048 key stored as PKCS#1.
openssl genrsa -traditional -out rsa2048.pkcs1.key 2048
sign rsa2048 rsa2048.pkcs1.key sha256 "O = HashiCorp
CN = localhost" "$goplugin_ext"

# pyvider-rpcplugin server shape: P-384 signed with SHA-256, CA:FALSE,
# EKU serverAuth only, SAN localhost plus loopback IPs.
openssl ecparam -name secp384r1 -genkey -noout -out pyvider-p384.key
sign pyvider-p384 pyvider-p384.key sha256 "O = pyvider
CN = localhost" "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash"

# A certificate on a curve we do not support (secp256k1); the key is not kept.
openssl ecparam -name secp256k1 -genkey -noout -out "$work/k1.key"
sign secp256k1 "$work/k1.key" sha256 "CN = localhost" "subjectAltName = DNS:localhost"
