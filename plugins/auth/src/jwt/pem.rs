//! PEM public keys for the `pem` setting: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`) or an X.509
//! `CERTIFICATE` (its subject public key), read with RustCrypto's `pem-rfc7468`, `der`, `spki` and `pkcs1`.
//!
//! jsonwebtoken's own PEM support (`use_pem`) reads ASN.1 through `simple_asn1`, which brings a date-time
//! format parser along; these crates are already in the module for the RSA and ECDSA verifiers.

use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, SliceReader, Tag, Tagged};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use spki::SubjectPublicKeyInfoRef;

/// A public key as the verifier needs it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// Big-endian modulus and exponent.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Affine coordinates on P-256 or P-384 (`crv` as a JWK names it).
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Reads one PEM public key.
pub(crate) fn public_key(pem: &str) -> Result<PublicKey, String> {
    let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    match label {
        "PUBLIC KEY" => from_spki(&SubjectPublicKeyInfoRef::from_der(&der).map_err(bad)?),
        "RSA PUBLIC KEY" => rsa_pkcs1(&der),
        "CERTIFICATE" => from_spki(&certificate_spki(&der)?),
        other => Err(format!(
            "a PEM {other:?} is not a public key (use PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)"
        )),
    }
}

fn bad(e: der::Error) -> String {
    format!("malformed key: {e}")
}

fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<PublicKey, String> {
    let key = spki.subject_public_key.as_bytes().ok_or("malformed key: the key bits are not whole bytes")?;
    match spki.algorithm.oid {
        RSA_ENCRYPTION => rsa_pkcs1(key),
        EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or("an EC key must name its curve")?;
            match curve {
                SECP256R1 => {
                    let point = p256::PublicKey::from_sec1_bytes(key).map_err(|_| "invalid P-256 point")?;
                    ec("P-256", point.to_encoded_point(false).as_bytes())
                }
                SECP384R1 => {
                    let point = p384::PublicKey::from_sec1_bytes(key).map_err(|_| "invalid P-384 point")?;
                    ec("P-384", point.to_encoded_point(false).as_bytes())
                }
                _ => Err("only P-256 and P-384 EC keys are supported".into()),
            }
        }
        ED25519 => Ok(PublicKey::Ed25519(key.to_vec())),
        other => Err(format!("unsupported key algorithm {other}")),
    }
}

/// An uncompressed SEC1 point (`04 || x || y`) split into its coordinates.
fn ec(crv: &'static str, point: &[u8]) -> Result<PublicKey, String> {
    let coordinates = point.get(1..).ok_or("invalid EC point")?;
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    Ok(PublicKey::Ec { crv, x: x.to_vec(), y: y.to_vec() })
}

fn rsa_pkcs1(der: &[u8]) -> Result<PublicKey, String> {
    let key = pkcs1::RsaPublicKey::from_der(der).map_err(|e| format!("malformed RSA key: {e}"))?;
    Ok(PublicKey::Rsa { n: key.modulus.as_bytes().to_vec(), e: key.public_exponent.as_bytes().to_vec() })
}

/// The subjectPublicKeyInfo of an X.509 certificate: the seventh field of tbsCertificate (after the
/// optional `[0]` version, serialNumber, signature, issuer, validity and subject).
fn certificate_spki(der: &[u8]) -> Result<SubjectPublicKeyInfoRef<'_>, String> {
    let certificate = AnyRef::from_der(der).map_err(bad)?;
    let tbs = AnyRef::decode(&mut SliceReader::new(certificate.value()).map_err(bad)?).map_err(bad)?;
    if certificate.tag() != Tag::Sequence || tbs.tag() != Tag::Sequence {
        return Err("malformed certificate".into());
    }
    let mut fields = SliceReader::new(tbs.value()).map_err(bad)?;
    let first = AnyRef::decode(&mut fields).map_err(bad)?;
    // The version is explicitly tagged [0]; without it the first field is already the serial number.
    let skip = if first.tag().is_context_specific() { 5 } else { 4 };
    for _ in 0..skip {
        AnyRef::decode(&mut fields).map_err(bad)?;
    }
    let spki = SubjectPublicKeyInfoRef::decode(&mut fields).map_err(bad)?;
    Ok(spki)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Self-signed test certificates (openssl req -x509), each beside its own public key.
    const EC_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIUShp1rKxyWWf0rKppJgbATTjiFDswCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNdG9sbGdhdGUtdGVzdDAeFw0yNjEyMDYwOTE0MzFaFw0zNjEy\nMDMwOTE0MzFaMBgxFjAUBgNVBAMMDXRvbGxnYXRlLXRlc3QwWTATBgcqhkjOPQIB\nBggqhkjOPQMBBwNCAAQGzSm7P3QI0/0G+BkVfjM15YcC+Qwv7rn3+IZznjXRDaLi\n2YB0fuOLc0gxKYxNpczPlx++ZWWaOYRwPnC35cxvo1MwUTAdBgNVHQ4EFgQUTBIx\nH/YYuTvQJyX+vhs1J1dWOfgwHwYDVR0jBBgwFoAUTBIxH/YYuTvQJyX+vhs1J1dW\nOfgwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBu4ZInoYGRTHVg\nSelNPVBuQBfsHwbbSTg0ck5J3D961wIhAKZF8Anm95j71FJeSRuNzc77ZYALKoMf\n+Wp9QbyUwwxD\n-----END CERTIFICATE-----\n";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBs0puz90CNP9BvgZFX4zNeWHAvkM\nL+659/iGc5410Q2i4tmAdH7ji3NIMSmMTaXMz5cfvmVlmjmEcD5wt+XMbw==\n-----END PUBLIC KEY-----\n";
    const RSA_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIDDzCCAfegAwIBAgIUcOLxm+wUlg0sNCfb3Amx+onHLXYwDQYJKoZIhvcNAQEL\nBQAwFzEVMBMGA1UEAwwMdG9sbGdhdGUtcnNhMB4XDTI2MTIwNjA5MTQzMloXDTM2\nMTIwMzA5MTQzMlowFzEVMBMGA1UEAwwMdG9sbGdhdGUtcnNhMIIBIjANBgkqhkiG\n9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuGUv9ZKw23dkSV5HgkbOpfXfaNTTYg0Kf8iF\ndMTx61OtvRBnykNtAJb+dtGJrhwj/3HkMhGKxwweUwftamq/2ISM75e/ugk4VwaX\nbNHdxTX5PgIe1lMHe0qgYj/CpXbMGgqEYoYXQZi+PXtM/f0m8t7JUWX3B3+yc9zx\n2fQt+u5pKyG/fmwCERfyEqu2wY7QHhdvjFrtsBxj3MQFsx8Re6RZqhWOGxEjCqgT\nhguWa3tyeLSZ/3V1wCUJlZygHlNT6/D0JFwtTzUiXGd8ceta40kTyU7Bg4gLf306\nDDXhwh0ycjKpyTPmE/JsU6OALTk4z4mpBJ2GcQusssLe9LS5/QIDAQABo1MwUTAd\nBgNVHQ4EFgQUOU90Q7r2qv1P7sP7O6IrgVdEvb0wHwYDVR0jBBgwFoAUOU90Q7r2\nqv1P7sP7O6IrgVdEvb0wDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOC\nAQEANAfcVtdHRpcgnb56fS1dmgfKSjnXRkiXO5xZEiuMz8AejxD1KxCOu1NISoi/\nrX8GDXO3+0AgZogJW8w5nnwjFRHa9uMMLhsDFULkDrrD4FFPmeceFL/gUJS9EDbR\n6mMStu9JIIdwZqj/v+c7QytfswmXJ6EQmcY+4abT+k0lk7/j5AKiETE9upA94rNu\nKZ87GwQCymZoIBVPs+hDZOUGJTuOU0+Uj9/4mDGVl4GpDneghrJ8C6iZHm9cxBn1\nmO8tZCP4Qv+k+IDg/wQPVx8eP6BWn8BlcDnsWXv4FW8lNSRbr0jbpGZnyOhsiYV+\niozvDvzcgZiSQ5d58AVTdCnw+w==\n-----END CERTIFICATE-----\n";
    const RSA_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuGUv9ZKw23dkSV5HgkbO\npfXfaNTTYg0Kf8iFdMTx61OtvRBnykNtAJb+dtGJrhwj/3HkMhGKxwweUwftamq/\n2ISM75e/ugk4VwaXbNHdxTX5PgIe1lMHe0qgYj/CpXbMGgqEYoYXQZi+PXtM/f0m\n8t7JUWX3B3+yc9zx2fQt+u5pKyG/fmwCERfyEqu2wY7QHhdvjFrtsBxj3MQFsx8R\ne6RZqhWOGxEjCqgThguWa3tyeLSZ/3V1wCUJlZygHlNT6/D0JFwtTzUiXGd8ceta\n40kTyU7Bg4gLf306DDXhwh0ycjKpyTPmE/JsU6OALTk4z4mpBJ2GcQusssLe9LS5\n/QIDAQAB\n-----END PUBLIC KEY-----\n";

    #[test]
    fn a_certificate_yields_its_subject_public_key() {
        let ec = public_key(EC_CERT).unwrap();
        assert_eq!(ec, public_key(EC_PUBLIC).unwrap());
        assert!(matches!(&ec, PublicKey::Ec { crv: "P-256", x, y } if x.len() == 32 && y.len() == 32));
        let rsa = public_key(RSA_CERT).unwrap();
        assert_eq!(rsa, public_key(RSA_PUBLIC).unwrap());
        assert!(matches!(&rsa, PublicKey::Rsa { n, e } if n.len() >= 256 && e == &[1, 0, 1]));
    }

    #[test]
    fn other_pem_and_broken_der_are_errors() {
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(public_key(private).unwrap_err().contains("not a public key"));
        assert!(public_key("hello").unwrap_err().starts_with("not PEM"));
        // The certificate cut short, and with a byte flipped in every position: an error or a key, never a panic.
        let der = pem_rfc7468::decode_vec(EC_CERT.as_bytes()).unwrap().1;
        for cut in 0..der.len() {
            let _ = certificate_spki(&der[..cut]);
        }
        for i in 0..der.len() {
            let mut flipped = der.clone();
            flipped[i] ^= 0xff;
            let _ = certificate_spki(&flipped);
        }
    }
}
