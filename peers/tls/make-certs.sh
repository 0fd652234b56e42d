#!/usr/bin/env bash
# Makes a throwaway PKI for manual-TLS cells with openssl:
#   OUTDIR/ca.pem ca.key            self-signed CA (CA:TRUE)
#   OUTDIR/server.pem server.key    leaf, SAN DNS:localhost IP:127.0.0.1 IP:::1, EKU serverAuth
#   OUTDIR/client.pem client.key    leaf, SAN DNS:localhost, EKU clientAuth
# All keys are of KEYTYPE (p256 | p384 | p521 | rsa2048; default p256), in
# PKCS#8 PEM. Certificates are valid from one hour ago for 30 days.
set -euo pipefail
out="${1:?usage: make-certs.sh OUTDIR [p256|p384|p521|rsa2048]}"
kt="${2:-p256}"
case "$kt" in
    p256) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256); md=sha256 ;;
    p384) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-384); md=sha384 ;;
    p521) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-521); md=sha512 ;;
    rsa2048) alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048); md=sha256 ;;
    *) echo "make-certs.sh: unknown key type $kt" >&2; exit 2 ;;
esac
mkdir -p "$out"
cd "$out"
umask 077

key() { openssl genpkey "${alg[@]}" -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -"$md" -days 30 -subj "/O=rpcplugin peers/CN=rpcplugin test CA ($kt)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.pem

leaf() { # name cn eku san
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/O=rpcplugin peers/CN=$2" -out "$1.csr"
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
        "$3" "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -"$md" -days 30 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
leaf server localhost serverAuth "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf client "rpcplugin test client" clientAuth "DNS:localhost"
rm -f ca.srl
chmod 644 ./*.pem
