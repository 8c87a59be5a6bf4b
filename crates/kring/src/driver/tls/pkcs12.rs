//! PKCS #12 key and trust stores (RFC 7292): Java's default store type
//! (`ssl.keystore.type=PKCS12`, `ssl.truststore.type=PKCS12`) and what
//! librdkafka's `ssl.keystore.location` holds. What a store carries is
//! read out of it — certificates and at most one private key — after its
//! MAC has been checked with the store password, as Java and OpenSSL do.
//!
//! Stores written by OpenSSL 3 and by Java's keytool since JDK 11.0.12
//! protect their contents with PBES2 (PBKDF2, AES-CBC) and an HMAC-SHA-2
//! MAC; those are read. The legacy schemes (RC2, RC4, 3DES, with a SHA-1
//! MAC: `openssl pkcs12 -legacy`, old keytools) are refused by name with
//! the command that rewrites the store. The ASN.1 types and the PKCS #12
//! key derivation are the `pkcs12` and `cms` crates', PBES2 is `pkcs5`'s
//! (through `pkcs8`), the MAC is ring's. Errors name what failed, never a
//! password or key material.

use der::asn1::ObjectIdentifier;
use der::{AnyRef, Decode, Encode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// `id-data` (RFC 5652).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// `id-encryptedData` (RFC 5652).
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// The MAC digests of `MacData`.
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
/// The legacy PKCS #12 PBE schemes' arc (`pkcs-12PbeIds`).
const PKCS12_PBE_ARC: &str = "1.2.840.113549.1.12.1.";

/// Why a store written with legacy algorithms is refused.
const LEGACY: &str = "legacy PKCS #12 encryption (RC2/RC4/3DES with a SHA-1 MAC), which kring \
    does not read; rewrite the store with current algorithms, e.g. `openssl pkcs12 -in old.p12 \
    -legacy -nodes | openssl pkcs12 -export -out new.p12` or `keytool -importkeystore \
    -srckeystore old.p12 -destkeystore new.p12 -deststoretype PKCS12` on JDK 17";

/// What a store holds.
pub(crate) struct Store {
    /// Every certificate, in the store's order.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// The private key, if the store has one.
    pub(crate) key: Option<PrivateKeyDer<'static>>,
}

/// Whether `bytes` look like a DER PKCS #12 store rather than PEM text (a
/// DER SEQUENCE; PEM starts with text).
pub(crate) fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) && !bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Reads a store: its MAC checked with `password`, its encrypted parts and
/// shrouded key decrypted with `password` and `key_password`.
pub(crate) fn read(bytes: &[u8], password: &str, key_password: &str) -> Result<Store, String> {
    let pfx = pkcs12::pfx::Pfx::from_der(bytes)
        .map_err(|_| "neither PEM text nor a PKCS #12 store".to_owned())?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err("a PKCS #12 store signed with public keys, which kring does not read".into());
    }
    let auth_safe =
        octets(&pfx.auth_safe.content).ok_or("a PKCS #12 store whose contents are not data")?;
    if let Some(mac) = &pfx.mac_data {
        check_mac(mac, auth_safe, password)?;
    }
    let parts: Vec<cms::content_info::ContentInfo> =
        Vec::from_der(auth_safe).map_err(|_| "a PKCS #12 store whose contents do not parse")?;
    let mut store = Store {
        certs: Vec::new(),
        key: None,
    };
    for part in parts {
        let safe_contents = if part.content_type == ID_DATA {
            octets(&part.content)
                .ok_or("a PKCS #12 part that is not data")?
                .to_vec()
        } else if part.content_type == ID_ENCRYPTED_DATA {
            let data: cms::encrypted_data::EncryptedData = part
                .content
                .decode_as()
                .map_err(|_| "an encrypted PKCS #12 part that does not parse")?;
            let info = data.enc_content_info;
            let ciphertext = info
                .encrypted_content
                .ok_or("an encrypted PKCS #12 part without content")?;
            let scheme = info
                .content_enc_alg
                .to_der()
                .map_err(|_| "an encrypted PKCS #12 part's algorithm does not parse")?;
            decrypt(
                &scheme,
                password,
                ciphertext.as_bytes(),
                "the store's certificates",
            )?
        } else {
            return Err(format!(
                "a PKCS #12 part of type {}, which kring does not read",
                part.content_type
            ));
        };
        let bags: Vec<pkcs12::safe_bag::SafeBag> = Vec::from_der(&safe_contents)
            .map_err(|_| "a PKCS #12 store's bags do not parse (a wrong password?)")?;
        for bag in bags {
            read_bag(&bag, key_password, &mut store)?;
        }
    }
    Ok(store)
}

/// One bag's certificate or key into `store`; other bags are skipped.
fn read_bag(
    bag: &pkcs12::safe_bag::SafeBag,
    key_password: &str,
    store: &mut Store,
) -> Result<(), String> {
    // `bag_value` is the `[0] EXPLICIT` wrapper; its content is the value.
    let value = AnyRef::from_der(&bag.bag_value)
        .map_err(|_| "a PKCS #12 bag that does not parse")?
        .value();
    let mut put_key = |der: Vec<u8>| {
        if store.key.is_some() {
            return Err(
                "a PKCS #12 store with more than one private key; kring reads \
                        stores with one (export the one to use)"
                    .to_owned(),
            );
        }
        store.key = Some(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)));
        Ok(())
    };
    if bag.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
        let cert = pkcs12::cert_type::CertBag::from_der(value)
            .map_err(|_| "a PKCS #12 certificate bag that does not parse")?;
        if cert.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
            store
                .certs
                .push(CertificateDer::from(cert.cert_value.as_bytes().to_vec()));
        }
    } else if bag.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(value)
            .map_err(|_| "a PKCS #12 key bag that does not parse")?;
        let scheme = info
            .encryption_algorithm
            .to_der()
            .map_err(|_| "a PKCS #12 key bag's algorithm does not parse")?;
        put_key(decrypt(
            &scheme,
            key_password,
            info.encrypted_data,
            "the store's private key",
        )?)?;
    } else if bag.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
        put_key(value.to_vec())?;
    }
    Ok(())
}

/// The content of a `ContentInfo` of type data: its OCTET STRING's bytes.
fn octets<'a>(content: &'a der::Any) -> Option<&'a [u8]> {
    content
        .decode_as::<der::asn1::OctetStringRef<'a>>()
        .ok()
        .map(|o| o.as_bytes())
}

/// PBES2-decrypts `ciphertext` (the scheme as DER `AlgorithmIdentifier`).
fn decrypt(
    scheme: &[u8],
    password: &str,
    ciphertext: &[u8],
    what: &str,
) -> Result<Vec<u8>, String> {
    let oid = spki_oid(scheme);
    if oid
        .as_deref()
        .is_some_and(|o| o.starts_with(PKCS12_PBE_ARC))
    {
        return Err(format!("a PKCS #12 store with {LEGACY}"));
    }
    let scheme = pkcs8::pkcs5::EncryptionScheme::from_der(scheme).map_err(|_| {
        format!(
            "{what} are encrypted with a scheme kring does not read ({}); it reads PBES2 \
             (PBKDF2 or scrypt with AES-CBC)",
            oid.unwrap_or_default()
        )
    })?;
    scheme
        .decrypt(password, ciphertext)
        .map_err(|_| format!("a password that does not decrypt {what}"))
}

/// The algorithm OID of a DER `AlgorithmIdentifier`, as text.
fn spki_oid(der: &[u8]) -> Option<String> {
    pkcs8::spki::AlgorithmIdentifierRef::from_der(der)
        .ok()
        .map(|a| a.oid.to_string())
}

/// Checks the store's MAC (HMAC with a key from the PKCS #12 KDF) over
/// `content`.
fn check_mac(
    mac: &pkcs12::mac_data::MacData,
    content: &[u8],
    password: &str,
) -> Result<(), String> {
    use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
    use ring::hmac;
    let alg = mac.mac.algorithm.oid;
    let salt = mac.mac_salt.as_bytes();
    let rounds = mac.iterations;
    let derive = |len| -> Result<Vec<u8>, String> {
        let key = match alg {
            a if a == SHA256 => {
                derive_key_utf8::<sha2::Sha256>(password, salt, Pkcs12KeyType::Mac, rounds, len)
            }
            a if a == SHA384 => {
                derive_key_utf8::<sha2::Sha384>(password, salt, Pkcs12KeyType::Mac, rounds, len)
            }
            _ => derive_key_utf8::<sha2::Sha512>(password, salt, Pkcs12KeyType::Mac, rounds, len),
        };
        key.map_err(|_| "a password that is not valid text for PKCS #12".to_owned())
    };
    let (algorithm, len) = match alg {
        a if a == SHA256 => (hmac::HMAC_SHA256, 32),
        a if a == SHA384 => (hmac::HMAC_SHA384, 48),
        a if a == SHA512 => (hmac::HMAC_SHA512, 64),
        _ => return Err(format!("a PKCS #12 store with {LEGACY}")),
    };
    if !(1..=10_000_000).contains(&rounds) {
        return Err(format!("a PKCS #12 MAC with {rounds} iterations"));
    }
    let key = hmac::Key::new(algorithm, &derive(len)?);
    hmac::verify(&key, content, mac.mac.digest.as_bytes()).map_err(|_| {
        "a MAC the password does not match (a wrong password, or a damaged store)".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject as _;

    const CLIENT: &[u8] = include_bytes!("testdata/pkcs12/client.p12");
    const CLIENT_KEYTOOL: &[u8] = include_bytes!("testdata/pkcs12/client-keytool.p12");
    const CLIENT_LEGACY: &[u8] = include_bytes!("testdata/pkcs12/client-legacy.p12");
    const CLIENT_PLAIN: &[u8] = include_bytes!("testdata/pkcs12/client-plain.p12");
    const CLIENT_SHA384: &[u8] = include_bytes!("testdata/pkcs12/client-sha384.p12");
    const CLIENT_SHA512: &[u8] = include_bytes!("testdata/pkcs12/client-sha512.p12");
    const CLIENT_3DES: &[u8] = include_bytes!("testdata/pkcs12/client-3des.p12");
    const TRUST: &[u8] = include_bytes!("testdata/pkcs12/trust.p12");
    const CA: &str = include_str!("testdata/pkcs12/ca.pem");

    fn ca_der() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(CA.as_bytes()).unwrap()
    }

    /// OpenSSL's and keytool's stores give the same key and chain; the key
    /// is the certificate's (rustls checks the pair).
    #[test]
    fn openssl_and_keytool_stores_give_the_key_and_chain() {
        let a = read(CLIENT, "kring-store-pass", "kring-store-pass").unwrap();
        let b = read(CLIENT_KEYTOOL, "kring-store-pass", "kring-store-pass").unwrap();
        assert_eq!(a.certs.len(), 2);
        assert!(a.certs.contains(&ca_der()));
        let key = a.key.as_ref().unwrap();
        assert_eq!(b.key.as_ref().unwrap().secret_der(), key.secret_der());
        let sorted = |c: &[CertificateDer<'static>]| {
            let mut v: Vec<Vec<u8>> = c.iter().map(|c| c.to_vec()).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&a.certs), sorted(&b.certs));
        let signer = crate::driver::tls::crypto_provider()
            .key_provider
            .load_private_key(key.clone_key())
            .unwrap();
        let leaf = a.certs.iter().find(|c| **c != ca_der()).unwrap().clone();
        let certified = rustls::sign::CertifiedKey::new(vec![leaf], signer);
        certified.keys_match().unwrap();
    }

    /// MACs with SHA-384 and SHA-512 check too, and not with a wrong
    /// password.
    #[test]
    fn sha384_and_sha512_macs_are_checked() {
        let want = read(CLIENT, "kring-store-pass", "kring-store-pass").unwrap();
        for store in [CLIENT_SHA384, CLIENT_SHA512] {
            let s = read(store, "kring-store-pass", "kring-store-pass").unwrap();
            assert_eq!(
                s.key.unwrap().secret_der(),
                want.key.as_ref().unwrap().secret_der()
            );
            let e = read(store, "hunter2", "hunter2").err().unwrap();
            assert!(e.contains("MAC the password does not match"), "{e}");
        }
    }

    /// A store without a MAC or encryption (a plain key bag) reads with
    /// any password, and gives the same key.
    #[test]
    fn an_unprotected_store_gives_its_plain_key() {
        let plain = read(CLIENT_PLAIN, "", "").unwrap();
        let openssl = read(CLIENT, "kring-store-pass", "kring-store-pass").unwrap();
        assert_eq!(
            plain.key.unwrap().secret_der(),
            openssl.key.unwrap().secret_der()
        );
        assert_eq!(plain.certs.len(), 1);
    }

    #[test]
    fn a_keytool_truststore_gives_its_certificate() {
        let t = read(TRUST, "kring-trust-pass", "kring-trust-pass").unwrap();
        assert_eq!(t.certs, [ca_der()]);
        assert!(t.key.is_none());
    }

    /// Wrong passwords, legacy stores and garbage are named, without the
    /// password.
    #[test]
    fn wrong_passwords_legacy_stores_and_garbage_are_refused() {
        for (bytes, password, want) in [
            (CLIENT, "hunter2", "MAC the password does not match"),
            (TRUST, "hunter2", "MAC the password does not match"),
            (CLIENT_LEGACY, "kring-store-pass", "legacy PKCS #12"),
            (CLIENT_3DES, "kring-store-pass", "legacy PKCS #12"),
            (&b"0\x03\x02\x01\x03"[..], "hunter2", "nor a PKCS #12 store"),
            (
                &CLIENT[..CLIENT.len() - 9],
                "hunter2",
                "nor a PKCS #12 store",
            ),
        ] {
            let e = read(bytes, password, password).err().unwrap();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // The store's password right, the key's wrong.
        let e = read(CLIENT, "kring-store-pass", "hunter2").err().unwrap();
        assert!(
            e.contains("does not decrypt the store's private key"),
            "{e}"
        );
        assert!(looks_like_pkcs12(CLIENT) && looks_like_pkcs12(TRUST));
        assert!(!looks_like_pkcs12(CA.as_bytes()));
        assert!(!looks_like_pkcs12(b"not PEM, not DER"));
    }
}
