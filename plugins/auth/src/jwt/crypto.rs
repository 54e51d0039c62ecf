//! The cryptography behind `jsonwebtoken::crypto::verify`: a `CryptoProvider` of our own that only
//! verifies, built on the same RustCrypto crates as jsonwebtoken's `rust_crypto` backend.
//!
//! The filter never signs, never reads private keys and never needs randomness; jsonwebtoken's bundled
//! provider links all of that in (signers for every algorithm, private-key parsers, an RNG), and in the
//! wasm module that was about 100 KB of code no request could reach. Verification is the same calls the
//! bundled provider makes: HMAC via `hmac`, RSA PKCS#1 v1.5 and PSS via `rsa`, ECDSA via `p256`/`p384`,
//! Ed25519 via `ed25519-dalek`.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use rsa::traits::SignatureScheme;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Verify-only: asking it to sign, or for JWK key utilities, is an error (never a panic). Tests that
/// sign their tokens with jsonwebtoken in the same process get its bundled signers (feature `test-signing`).
static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(unsupported()),
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: |_, _| Err(unsupported()),
        ed_pub_components_from_private_key: |_: &[u8], _: &EllipticCurve| Err(unsupported()),
        compute_digest: |_: &[u8], _: ThumbprintHash| Err(unsupported()),
    },
};

/// Makes this provider jsonwebtoken's for the process (the VM). Idempotent and cheap (one atomic load
/// once installed), so it is called before every verification rather than relying on start-up order.
pub(crate) fn install() {
    // Err means a provider is installed already: this one, as nothing else in the module installs one.
    let _ = PROVIDER.install_default();
}

fn unsupported() -> Error {
    Error::from(ErrorKind::InvalidAlgorithm)
}

#[cfg(not(any(test, feature = "test-signing")))]
fn signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Err(unsupported())
}

#[cfg(any(test, feature = "test-signing"))]
fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    };
    if key.family() != family {
        return Err(Error::from(ErrorKind::InvalidKeyFormat));
    }
    Ok(Box::new(Verify { alg: *alg, key: key.clone() }))
}

struct Verify {
    alg: Algorithm,
    key: DecodingKey,
}

impl JwtVerifier for Verify {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

impl Verifier<Vec<u8>> for Verify {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        match self.alg {
            Algorithm::HS256 => verify_hmac::<hmac::Hmac<Sha256>>(&self.key, msg, sig),
            Algorithm::HS384 => verify_hmac::<hmac::Hmac<Sha384>>(&self.key, msg, sig),
            Algorithm::HS512 => verify_hmac::<hmac::Hmac<Sha512>>(&self.key, msg, sig),
            Algorithm::RS256 => verify_rsa::<Sha256>(Pkcs1v15Sign::new::<Sha256>(), &self.key, msg, sig),
            Algorithm::RS384 => verify_rsa::<Sha384>(Pkcs1v15Sign::new::<Sha384>(), &self.key, msg, sig),
            Algorithm::RS512 => verify_rsa::<Sha512>(Pkcs1v15Sign::new::<Sha512>(), &self.key, msg, sig),
            Algorithm::PS256 => verify_rsa::<Sha256>(Pss::new::<Sha256>(), &self.key, msg, sig),
            Algorithm::PS384 => verify_rsa::<Sha384>(Pss::new::<Sha384>(), &self.key, msg, sig),
            Algorithm::PS512 => verify_rsa::<Sha512>(Pss::new::<Sha512>(), &self.key, msg, sig),
            Algorithm::ES256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes(&self.key)?)?;
                key.verify(msg, &p256::ecdsa::Signature::from_slice(sig)?)
            }
            Algorithm::ES384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes(&self.key)?)?;
                key.verify(msg, &p384::ecdsa::Signature::from_slice(sig)?)
            }
            Algorithm::EdDSA => {
                let raw: &[u8; 32] = bytes(&self.key)?.try_into().map_err(signature::Error::from_source)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(raw)?;
                key.verify(msg, &ed25519_dalek::Signature::from_slice(sig)?)
            }
            // Algorithm is non-exhaustive: one added later verifies nothing until it is wired here.
            _ => Err(signature::Error::new()),
        }
    }
}

fn bytes(key: &DecodingKey) -> std::result::Result<&[u8], signature::Error> {
    key.try_get_as_bytes().map_err(signature::Error::from_source)
}

fn verify_hmac<M: hmac::Mac + hmac::digest::KeyInit>(
    key: &DecodingKey,
    msg: &[u8],
    sig: &[u8],
) -> std::result::Result<(), signature::Error> {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(bytes(key)?).map_err(signature::Error::from_source)?;
    mac.update(msg);
    mac.verify_slice(sig).map_err(signature::Error::from_source)
}

fn verify_rsa<H: Digest>(
    scheme: impl SignatureScheme,
    key: &DecodingKey,
    msg: &[u8],
    sig: &[u8],
) -> std::result::Result<(), signature::Error> {
    // Every RSA key here is built from its modulus and exponent (keys.rs).
    let DecodingKeyKind::RsaModulusExponent { n, e } = key.kind() else {
        return Err(signature::Error::new());
    };
    let public = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(signature::Error::from_source)?;
    public.verify(scheme, &H::digest(msg), sig).map_err(signature::Error::from_source)
}
