//! The three secrets of a log (docs/audit-log-format.md, section 7): the
//! log key (AES-256-GCM), the signing key (Ed25519) and the masking key
//! (HMAC-SHA-256), created on first use with mode 0600.

use std::path::{Path, PathBuf};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::format::{SignedHead, MAGIC};
use crate::merkle::Hash;

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file holds something else than a key.
    #[error("{}: not a valid key file", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

/// The keys of one log.
pub struct Keys {
    log: LessSafeKey,
    signing: Ed25519KeyPair,
    public: [u8; 32],
    mask: ring::hmac::Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("key_id", &crate::format::to_hex(&self.key_id())).finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads the keys in `DIR/keys/`, creating missing ones.
    pub fn load_or_create(audit_dir: &Path) -> Result<Self, KeyError> {
        Self::load_with(audit_dir, true)
    }

    /// Loads the keys in `DIR/keys/`; a missing key is an error (for
    /// commands that read a log and must not replace what they check).
    pub fn load(audit_dir: &Path) -> Result<Self, KeyError> {
        Self::load_with(audit_dir, false)
    }

    fn load_with(audit_dir: &Path, create: bool) -> Result<Self, KeyError> {
        let dir = audit_dir.join("keys");
        if create {
            create_private_dir(&dir).map_err(|source| KeyError::Io { path: dir.clone(), source })?;
        }
        let rng = SystemRandom::new();
        let log = secret(&dir.join("log.key"), create, || random32(&rng))?;
        let mask = secret(&dir.join("mask.key"), create, || random32(&rng))?;
        let signing_path = dir.join("signing.key");
        let pkcs8 = secret(&signing_path, create, || {
            Ed25519KeyPair::generate_pkcs8(&rng).map(|d| d.as_ref().to_vec()).map_err(|_| ())
        })?;
        let signing = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Invalid { path: signing_path })?;
        let mut public = [0u8; 32];
        public.copy_from_slice(signing.public_key().as_ref());
        let pub_path = dir.join("signing.pub");
        if create && !pub_path.exists() {
            write_private(&pub_path, (crate::format::to_hex(&public) + "\n").as_bytes())
                .map_err(|source| KeyError::Io { path: pub_path, source })?;
        }
        let bad = |p: &str| KeyError::Invalid { path: dir.join(p) };
        let log = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, &log).map_err(|_| bad("log.key"))?);
        if mask.len() != 32 {
            return Err(bad("mask.key"));
        }
        Ok(Keys { log, signing, public, mask: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mask) })
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// First 16 bytes of SHA-256 of the public key.
    pub fn key_id(&self) -> [u8; 16] {
        key_id_of(&self.public)
    }

    /// Signs a tree head.
    pub fn sign(&self, tree_size: u64, timestamp_ms: u64, root: Hash) -> SignedHead {
        let sig = self.signing.sign(&SignedHead::message(tree_size, timestamp_ms, &root));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig.as_ref());
        SignedHead { tree_size, timestamp_ms, root, signature }
    }

    /// Signs a segment header (format version 2, section 3.1).
    pub fn sign_header(&self, header: &crate::format::Header) -> [u8; crate::format::HEADER_SIG_LEN] {
        let sig = self.signing.sign(&header.signed_message());
        let mut signature = [0u8; crate::format::HEADER_SIG_LEN];
        signature.copy_from_slice(sig.as_ref());
        signature
    }

    /// Encrypts an event record body in place (tag appended).
    pub fn seal(&self, prefix: [u8; 4], segment: u64, leaf: u64, data: &mut Vec<u8>) {
        let (nonce, aad) = nonce_aad(prefix, segment, leaf);
        // Only fails for inputs over ~64 GiB, far above MAX_RECORD.
        let _ = self.log.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data);
    }

    /// Decrypts an event record body; `None` if it was altered or moved.
    pub fn open<'a>(&self, prefix: [u8; 4], segment: u64, leaf: u64, data: &'a mut [u8]) -> Option<&'a mut [u8]> {
        let (nonce, aad) = nonce_aad(prefix, segment, leaf);
        self.log.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), data).ok()
    }

    /// HMAC-SHA-256 under the masking key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.mask, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// The key id of a public key.
pub fn key_id_of(public: &[u8; 32]) -> [u8; 16] {
    let d = ring::digest::digest(&ring::digest::SHA256, public);
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    id
}

/// Whether a public key can mean anything: an encoding that is not
/// canonical (y of 2^255 - 19 or more) or that of a point of small order
/// (order 1, 2, 4 or 8; the all-zero key is one) is refused. Ed25519 does
/// not reject such keys by itself, and with them signatures can be made
/// without any private key.
pub fn is_usable_public_key(key: &[u8; 32]) -> bool {
    let mut y = *key;
    y[31] &= 0x7f; // the sign of x
                   // y >= p = 2^255 - 19, little-endian.
    let non_canonical = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed;
    !non_canonical && !SMALL_ORDER_Y.contains(&y)
}

/// The y coordinates (little-endian) of the eight points of small order
/// of edwards25519 (both signs of x share them): 0 (order 4), 1 (the
/// identity), p - 1 (order 2), and the two of order 8.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
];

/// Reads the public key of a log (what a verifier needs).
pub fn read_public_key(audit_dir: &Path) -> Option<[u8; 32]> {
    let text = std::fs::read_to_string(audit_dir.join("keys/signing.pub")).ok()?;
    crate::format::from_hex::<32>(text.trim())
}

fn nonce_aad(prefix: [u8; 4], segment: u64, leaf: u64) -> ([u8; 12], [u8; 24]) {
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&prefix);
    nonce[4..].copy_from_slice(&leaf.to_be_bytes());
    let mut aad = [0u8; 24];
    aad[..8].copy_from_slice(MAGIC);
    aad[8..16].copy_from_slice(&segment.to_be_bytes());
    aad[16..].copy_from_slice(&leaf.to_be_bytes());
    (nonce, aad)
}

fn random32(rng: &SystemRandom) -> Result<Vec<u8>, ()> {
    let mut k = vec![0u8; 32];
    rng.fill(&mut k).map_err(|_| ())?;
    Ok(k)
}

/// Random bytes from the operating system.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let _ = SystemRandom::new().fill(&mut b);
    b
}

fn secret(path: &Path, create: bool, make: impl FnOnce() -> Result<Vec<u8>, ()>) -> Result<Vec<u8>, KeyError> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = make().map_err(|_| KeyError::Invalid { path: path.to_path_buf() })?;
            write_private(path, &bytes).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
            Ok(bytes)
        }
        Err(source) => Err(KeyError::Io { path: path.to_path_buf(), source }),
    }
}

/// Writes a file readable by its owner only, atomically (temp + rename).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = private_file_options().write(true).create(true).truncate(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates a directory and its missing parents with mode 0700 (only the
/// ones created here), and sets 0700 on the directory itself: what the
/// audit log keeps is for its owner only.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    b.create(path)
}

/// Options that create a file readable by its owner only (mode 0600).
pub fn private_file_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keys::load_or_create(dir.path()).unwrap();
        let b = Keys::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.mac(b"x"), b.mac(b"x"));
        assert_eq!(read_public_key(dir.path()), Some(a.public_key()));
        #[cfg(unix)]
        for f in ["log.key", "signing.key", "mask.key"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys").join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    #[test]
    fn sealed_records_only_open_at_their_own_position() {
        let dir = tempfile::tempdir().unwrap();
        let k = Keys::load_or_create(dir.path()).unwrap();
        let mut data = b"{\"a\":1}".to_vec();
        k.seal([1, 2, 3, 4], 3, 10, &mut data);
        assert!(k.open([1, 2, 3, 4], 3, 11, &mut data.clone()).is_none());
        assert!(k.open([1, 2, 3, 4], 4, 10, &mut data.clone()).is_none());
        assert_eq!(k.open([1, 2, 3, 4], 3, 10, &mut data).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let k = Keys::load_or_create(dir.path()).unwrap();
        let h = k.sign(9, 1234, [5; 32]);
        assert!(h.verify(&k.public_key()));
        let mut forged = h.clone();
        forged.tree_size = 8;
        assert!(!forged.verify(&k.public_key()));
    }

    #[test]
    fn keys_of_small_order_or_not_canonical_are_not_usable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(is_usable_public_key(&Keys::load_or_create(dir.path()).unwrap().public_key()));
        for y in SMALL_ORDER_Y {
            let mut negative = y;
            negative[31] |= 0x80;
            assert!(!is_usable_public_key(&y) && !is_usable_public_key(&negative), "{y:02x?}");
        }
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert!(!is_usable_public_key(&p_plus_1));
        // The zeroed key signs anything for anyone: here, a signature whose
        // R is the identity and S zero is accepted by Ed25519 itself, one
        // message in a few (the hash must land on a multiple of 4).
        let zero = [0u8; 32];
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let forged = (0u64..64).any(|n| {
            let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &zero);
            key.verify(&n.to_be_bytes(), &sig).is_ok()
        });
        assert!(forged, "the test's premise: Ed25519 alone accepts forgeries under a zero key");
    }

    #[test]
    fn load_does_not_create_missing_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Keys::load(dir.path()).is_err());
        assert!(!dir.path().join("keys").exists());
        let a = Keys::load_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("keys/signing.pub")).unwrap();
        assert_eq!(Keys::load(dir.path()).unwrap().public_key(), a.public_key());
        assert!(!dir.path().join("keys/signing.pub").exists());
    }

    #[test]
    fn a_garbage_signing_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/signing.key"), b"junk").unwrap();
        let e = Keys::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains("signing.key"), "{e}");
    }
}
