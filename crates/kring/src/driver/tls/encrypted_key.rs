//! Encrypted private keys: the `ENCRYPTED PRIVATE KEY` PEM block of PKCS #8
//! (RFC 5958, PBES2 of RFC 8018: PBKDF2 or scrypt, AES-CBC), what `openssl
//! pkcs8 -topk8` and `openssl genpkey -aes256` write and what the Java
//! client reads with `ssl.key.password`. OpenSSL's older
//! `Proc-Type: 4,ENCRYPTED` form is not read (Java does not read it
//! either); the error says how to convert it. The decryption itself is the
//! `pkcs8` crate's. Errors name what failed, never the password or the key.

use der::Decode as _;
use rustls::pki_types::{pem::PemObject as _, PrivateKeyDer, PrivatePkcs8KeyDer};

const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// Why a PEM text gave no private key; each caller names its own
/// settings around it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyError {
    /// No PEM private key in the text.
    NoKey,
    /// OpenSSL's traditional encrypted form ([`LEGACY`] says how to convert).
    Legacy,
    /// An encrypted PKCS #8 key and no password.
    NeedsPassword,
    /// The encrypted key could not be opened: why, fit for "holds ...".
    Decrypt(String),
}

/// The private key of a PEM text: as it is, or decrypted with `password`
/// if it is an encrypted PKCS #8 key (a password for a plain key is not
/// needed and not checked, as in Java and librdkafka).
pub(crate) fn load(pem: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, KeyError> {
    let text = String::from_utf8_lossy(pem);
    match (form(&text), password) {
        (KeyForm::Plain, _) => PrivateKeyDer::from_pem_slice(pem).map_err(|_| KeyError::NoKey),
        (KeyForm::LegacyEncrypted, _) => Err(KeyError::Legacy),
        (KeyForm::Pkcs8Encrypted, None) => Err(KeyError::NeedsPassword),
        (KeyForm::Pkcs8Encrypted, Some(p)) => decrypt(&text, p).map_err(KeyError::Decrypt),
    }
}

/// How a PEM text's private key is stored.
#[derive(Debug, PartialEq, Eq)]
enum KeyForm {
    /// Not encrypted (or no key at all).
    Plain,
    /// PKCS #8 `ENCRYPTED PRIVATE KEY`.
    Pkcs8Encrypted,
    /// OpenSSL's traditional `Proc-Type: 4,ENCRYPTED`.
    LegacyEncrypted,
}

/// How `pem`'s private key is stored.
fn form(pem: &str) -> KeyForm {
    if pem.contains(BEGIN) {
        KeyForm::Pkcs8Encrypted
    } else if pem.contains("Proc-Type: 4,ENCRYPTED") {
        KeyForm::LegacyEncrypted
    } else {
        KeyForm::Plain
    }
}

/// Why a key cannot be used as it is stored, for a legacy one.
pub(crate) const LEGACY: &str = "an OpenSSL traditional encrypted key (Proc-Type: \
    4,ENCRYPTED), which kring, like the Java client, does not read; convert it \
    to PKCS #8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key-pkcs8.pem`)";

/// The private key of `pem`'s `ENCRYPTED PRIVATE KEY` block, decrypted with
/// `password`.
fn decrypt(pem: &str, password: &str) -> Result<PrivateKeyDer<'static>, String> {
    let start = pem.find(BEGIN).ok_or("no ENCRYPTED PRIVATE KEY block")?;
    let end = pem[start..]
        .find(END)
        .map(|e| start + e + END.len())
        .ok_or("an ENCRYPTED PRIVATE KEY block without its END line")?;
    let block = pem[start..end].replace("\r\n", "\n");
    let (label, doc) = pkcs8::Document::from_pem(&block)
        .map_err(|_| "an ENCRYPTED PRIVATE KEY block that is not valid PEM")?;
    debug_assert_eq!(label, "ENCRYPTED PRIVATE KEY");
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|_| {
        // pkcs5 parses only the schemes it can decrypt: name the others.
        match pkcs12::pbe_params::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()) {
            Ok(other) => format!(
                "a key encrypted with a scheme kring does not read ({}; it reads PBES2: \
                 PBKDF2 or scrypt with AES-128/192/256-CBC)",
                other.encryption_algorithm.oid
            ),
            Err(_) => "an ENCRYPTED PRIVATE KEY block that is not PKCS #8".to_owned(),
        }
    })?;
    let key = info
        .decrypt(password)
        .map_err(|_| "a key the password does not decrypt (a wrong password)")?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        key.as_bytes().to_vec(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oauth tests' RSA key, and the same key encrypted by OpenSSL 3
    /// (`openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:kring-test-pass`:
    /// PBES2, PBKDF2 with HMAC-SHA256, AES-256-CBC), with certificates
    /// around it as in a keystore file.
    const PLAIN: &str = include_str!("../../oauth/testdata/rsa-2048-test-key.pem");
    const ENCRYPTED: &str = include_str!("testdata/rsa-2048-test-key-encrypted.pem");
    const PASSWORD: &str = "kring-test-pass";

    #[test]
    fn an_openssl_encrypted_pkcs8_key_decrypts_to_the_plain_key() {
        let want = PrivateKeyDer::from_pem_slice(PLAIN.as_bytes()).unwrap();
        assert_eq!(form(ENCRYPTED), KeyForm::Pkcs8Encrypted);
        assert_eq!(form(PLAIN), KeyForm::Plain);
        let got = decrypt(ENCRYPTED, PASSWORD).unwrap();
        assert_eq!(got.secret_der(), want.secret_der());
        // Inside a keystore file, with CRLF line ends.
        let keystore = format!(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{}",
            ENCRYPTED.replace('\n', "\r\n")
        );
        assert_eq!(
            decrypt(&keystore, PASSWORD).unwrap().secret_der(),
            want.secret_der()
        );
    }

    #[test]
    fn a_wrong_password_and_broken_blocks_are_named_without_the_password() {
        for (pem, password, want) in [
            (ENCRYPTED, "hunter2", "wrong password"),
            (PLAIN, "hunter2", "no ENCRYPTED PRIVATE KEY block"),
            (
                &ENCRYPTED[..ENCRYPTED.len() / 2],
                "hunter2",
                "without its END line",
            ),
        ] {
            let e = decrypt(pem, password).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert_eq!(
            form("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
            KeyForm::LegacyEncrypted
        );
        // PBES2 with 3DES (`openssl pkcs8 -topk8 -v2 des3`): a scheme
        // kring does not read, said so even with the right password.
        let des3 = include_str!("testdata/rsa-2048-test-key-des3.pem");
        let e = decrypt(des3, PASSWORD).unwrap_err();
        assert!(e.contains("a scheme kring does not read"), "{e}");
    }
}
