//! Keys and envelopes (docs/backup-format.md, "Keys" and "Encrypted
//! objects"). The master key is 64 random bytes: an AES-256-GCM data key
//! and an HMAC-SHA-256 key for chunk ids. It is stored wrapped under a key
//! derived from a passphrase with Argon2id, and kept in memory zeroed on
//! drop.

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The repository's secret keys.
pub struct Keys {
    data: LessSafeKey,
    id: hmac::Key,
    /// Names snapshot series in `heads/` (derived from the id key, so a
    /// series id is never a chunk id and reveals nothing without the key).
    series: hmac::Key,
    raw: Zeroizing<[u8; 64]>,
}

/// Argon2id cost: 64 MiB, 3 passes, 1 lane.
const M_COST: u32 = 65536;
const T_COST: u32 = 3;

/// The most memory (KiB) a key file may ask Argon2id for: 1 GiB, 16 times
/// the default. A key file comes from untrusted storage, and its
/// parameters are read before anything is authenticated: unbounded, one
/// planted key file makes every command allocate what it says (the review
/// saw `m=2097152`, 2 GiB). 1 GiB still allows much stronger settings than
/// ours, and fits the machines backups run on.
pub const MAX_M_COST: u32 = 1 << 20;
/// The most passes a key file may ask for: 16 (the default is 3). With
/// [`MAX_M_COST`] that is 16 GiB of memory traffic, some seconds; the
/// review's `t=4294967295` hung every command.
pub const MAX_T_COST: u32 = 16;
/// The most lanes a key file may ask for: 16 (the default is 1). More
/// lanes are no stronger on the machines that guess passwords.
pub const MAX_P_COST: u32 = 16;
const WRAP_AAD: &[u8] = b"rampart-backup-key-v1";
/// The series key is `HMAC-SHA-256(id_key, SERIES_KEY_LABEL)`.
const SERIES_KEY_LABEL: &[u8] = b"rampart-backup-series-v1";

/// A wrapped master key, as stored in `keys/<id>`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct KeyFile {
    v: u8,
    kdf: String,
    m: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    wrapped: String,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS's random source failing is not something to continue through.
    if SystemRandom::new().fill(&mut b).is_err() {
        panic!("the operating system's random source failed");
    }
    b
}

fn kek(password: &[u8], salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| Error::Repository(format!("key: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(password, salt, out.as_mut()).map_err(|e| Error::Repository(format!("key: {e}")))?;
    Ok(out)
}

impl Keys {
    /// New random keys.
    pub fn generate() -> Keys {
        Keys::from_raw(Zeroizing::new(random::<64>()))
    }

    fn from_raw(raw: Zeroizing<[u8; 64]>) -> Keys {
        // 32 bytes is AES-256's key length: this cannot fail.
        let data = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw[..32]).unwrap_or_else(|_| unreachable!()));
        let id = hmac::Key::new(hmac::HMAC_SHA256, &raw[32..]);
        let series = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&id, SERIES_KEY_LABEL).as_ref());
        Keys { data, id, series, raw }
    }

    /// The master key wrapped under `password`.
    pub fn wrap(&self, password: &[u8]) -> Result<KeyFile> {
        let salt = random::<16>();
        let nonce = random::<12>();
        let kek = kek(password, &salt, M_COST, T_COST, 1)?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek.as_ref()).unwrap_or_else(|_| unreachable!()));
        let mut sealed = self.raw.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut sealed)
            .map_err(|_| Error::Repository("cannot wrap the key".into()))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyFile {
            v: 1,
            kdf: "argon2id".into(),
            m: M_COST,
            t: T_COST,
            p: 1,
            salt: b64.encode(salt),
            nonce: b64.encode(nonce),
            wrapped: b64.encode(sealed),
        })
    }

    /// The master key from a key file, if `password` opens it.
    pub fn unwrap(file: &KeyFile, password: &[u8]) -> Result<Keys> {
        if file.v != 1 || file.kdf != "argon2id" {
            return Err(Error::Repository(format!("key file version {} ({}) is not supported", file.v, file.kdf)));
        }
        if file.m > MAX_M_COST || file.t > MAX_T_COST || file.p > MAX_P_COST {
            return Err(Error::Repository(format!(
                "key file: Argon2id parameters m={} KiB, t={}, p={} exceed the bounds (m <= {MAX_M_COST}, t <= \
                 {MAX_T_COST}, p <= {MAX_P_COST}; docs/backup-format.md, \"Keys\")",
                file.m, file.t, file.p
            )));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let bad = |_| Error::Damaged("key file".into());
        let salt = b64.decode(&file.salt).map_err(bad)?;
        let nonce: [u8; 12] =
            b64.decode(&file.nonce).map_err(bad)?.try_into().map_err(|_| Error::Damaged("key file".into()))?;
        let mut sealed = b64.decode(&file.wrapped).map_err(bad)?;
        let kek = kek(password, &salt, file.m, file.t, file.p)?;
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek.as_ref()).unwrap_or_else(|_| unreachable!()));
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(WRAP_AAD), &mut sealed)
            .map_err(|_| Error::WrongPassword)?;
        let raw: [u8; 64] = plain.try_into().map_err(|_| Error::Damaged("key file".into()))?;
        sealed.iter_mut().for_each(|b| *b = 0);
        Ok(Keys::from_raw(Zeroizing::new(raw)))
    }

    /// A chunk's id: HMAC-SHA-256 under the id key.
    pub fn blob_id(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.id, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// A snapshot series' id: HMAC-SHA-256 under the series key of its
    /// canonical JSON `[hostname, source, paths]`.
    pub fn series_id(&self, canonical: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.series, canonical);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// `nonce || AES-256-GCM(plaintext)` with `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + plaintext.len() + 16);
        self.seal_into(&mut out, plaintext, aad);
        out
    }

    /// [`Keys::seal`] into `out` (cleared first), so a caller can reuse
    /// one buffer for many blobs.
    pub fn seal_into(&self, out: &mut Vec<u8>, plaintext: &[u8], aad: &[u8]) {
        let nonce = random::<12>();
        out.clear();
        out.reserve(12 + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        // Sealing with a valid key and a fresh nonce does not fail (it
        // refuses only inputs of more than 64 GiB).
        if let Ok(tag) =
            self.data.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[12..])
        {
            out.extend_from_slice(tag.as_ref());
        }
    }

    /// The plaintext of a sealed `data`, or `Damaged(what)`.
    pub fn open(&self, data: &[u8], aad: &[u8], what: &str) -> Result<Vec<u8>> {
        let (nonce, body) = data.split_at_checked(12).ok_or_else(|| Error::Damaged(what.to_string()))?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| Error::Damaged(what.to_string()))?;
        let mut body = body.to_vec();
        let plain = self
            .data
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| Error::Damaged(what.to_string()))?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }

    /// An envelope: version byte, then [`Keys::seal`] with the object kind
    /// as AAD.
    pub fn envelope(&self, kind: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend(self.seal(plaintext, kind.as_bytes()));
        out
    }

    /// The plaintext of an envelope.
    pub fn open_envelope(&self, kind: &str, data: &[u8], what: &str) -> Result<Vec<u8>> {
        match data.split_first() {
            Some((1, rest)) => self.open(rest, kind.as_bytes(), what),
            Some((v, _)) => Err(Error::Repository(format!("{what}: envelope version {v} is not supported"))),
            None => Err(Error::Damaged(what.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_and_wrong_password() {
        let k = Keys::generate();
        let f = k.wrap(b"correct horse").unwrap();
        let back = Keys::unwrap(&f, b"correct horse").unwrap();
        assert_eq!(back.blob_id(b"x"), k.blob_id(b"x"));
        assert!(matches!(Keys::unwrap(&f, b"wrong"), Err(Error::WrongPassword)));
    }

    /// Parameters from storage are bounded before Argon2 runs: `t=u32::MAX`
    /// used to hang, `m=2097152` to allocate 2 GiB.
    #[test]
    fn key_file_parameters_out_of_bounds_are_refused_at_once() {
        let k = Keys::generate();
        let good = k.wrap(b"pw").unwrap();
        // Lanes first: out of bounds, but cheap enough to show the
        // difference without the bound (the others would hang or take
        // 2 GiB).
        for (m, t, p) in [(M_COST, T_COST, 255), (M_COST, u32::MAX, 1), (2_097_152, T_COST, 1)] {
            let mut f = good.clone();
            (f.m, f.t, f.p) = (m, t, p);
            let start = std::time::Instant::now();
            let err = Keys::unwrap(&f, b"pw").err().unwrap().to_string();
            assert!(err.contains("exceed the bounds"), "{err}");
            assert!(start.elapsed() < std::time::Duration::from_secs(1), "refused before any work");
        }
        // The largest allowed settings are accepted (the wrapped key just
        // does not open under them).
        let mut f = good.clone();
        (f.m, f.t, f.p) = (8 * MAX_P_COST, MAX_T_COST, MAX_P_COST);
        assert!(matches!(Keys::unwrap(&f, b"pw"), Err(Error::WrongPassword)));
    }

    #[test]
    fn envelopes_are_bound_to_their_kind_and_detect_flips() {
        let k = Keys::generate();
        let e = k.envelope("index", b"hello");
        assert_eq!(k.open_envelope("index", &e, "i").unwrap(), b"hello");
        assert!(matches!(k.open_envelope("snapshot", &e, "i"), Err(Error::Damaged(_))));
        let mut flipped = e.clone();
        flipped[20] ^= 1;
        assert!(matches!(k.open_envelope("index", &flipped, "i"), Err(Error::Damaged(_))));
        assert_ne!(k.blob_id(b"a"), Keys::generate().blob_id(b"a"), "ids are keyed");
    }
}
