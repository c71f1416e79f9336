//! TLS termination: certificates chosen by SNI, reloaded when their files
//! change, and a self-signed certificate when none is configured.
//!
//! Protocol choices (rustls with the `ring` provider): TLS 1.2 and 1.3 only,
//! rustls' default suites (AES-GCM and ChaCha20-Poly1305 with ECDHE; no CBC,
//! no RSA key exchange), ALPN `h2` then `http/1.1`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rampart_core::config::{Certificate, Tls};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM object.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The self-signed certificate could not be generated or written.
    #[error("self-signed certificate in {}: {message}", dir.display())]
    SelfSigned {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// One loaded certificate with the names it serves and the files it came
/// from (with their modification times, to notice changes).
struct Loaded {
    key: Arc<CertifiedKey>,
    names: Vec<String>,
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

/// The certificates in force: exact names, wildcard suffixes, a default.
#[derive(Default)]
struct Table {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

/// Resolves the certificate for a handshake by SNI; its table can be
/// swapped while handshakes run.
pub struct CertResolver {
    table: ArcSwap<Table>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").field("names", &self.table.load().exact.keys().collect::<Vec<_>>()).finish()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        let Some(name) = hello.server_name() else {
            return table.default.clone();
        };
        let name = name.to_ascii_lowercase();
        if let Some(k) = table.exact.get(&name) {
            return Some(k.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = table.wildcard.get(parent) {
                return Some(k.clone());
            }
        }
        table.default.clone()
    }
}

impl CertResolver {
    /// Loads the configured certificates, or the self-signed one from
    /// `data_dir` (generating it the first time).
    pub fn load(tls: &Tls, data_dir: &Path) -> Result<Arc<Self>, TlsError> {
        let table = build_table(&effective_certificates(tls, data_dir)?)?;
        Ok(Arc::new(CertResolver { table: ArcSwap::from_pointee(table) }))
    }

    /// Reloads if a configured file changed (or the list did). Returns
    /// `Ok(true)` when a new table is in force; on error the old one stays.
    pub fn reload_if_changed(&self, tls: &Tls, data_dir: &Path) -> Result<bool, TlsError> {
        let certs = effective_certificates(tls, data_dir)?;
        let current = self.table.load();
        let wanted: Vec<&Path> = certs.iter().flat_map(|c| [c.cert.as_path(), c.key.as_path()]).collect();
        let same_files = wanted.len() == current.files.len()
            && wanted.iter().zip(&current.files).all(|(p, (q, mtime))| *p == q.as_path() && modified(p) == *mtime);
        if same_files {
            return Ok(false);
        }
        self.table.store(Arc::new(build_table(&certs)?));
        Ok(true)
    }

    /// Files whose change should trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.table.load().files.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// Builds the rustls server configuration around `resolver`.
pub fn server_config(tls: &Tls, resolver: Arc<CertResolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.min_version == "1.3" {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn effective_certificates(tls: &Tls, data_dir: &Path) -> Result<Vec<Certificate>, TlsError> {
    if !tls.certificates.is_empty() {
        return Ok(tls.certificates.clone());
    }
    Ok(vec![self_signed(data_dir)?])
}

/// The self-signed certificate in `DATA_DIR/tls/`, generated on first use
/// for `localhost`, `127.0.0.1` and `::1`.
pub fn self_signed(data_dir: &Path) -> Result<Certificate, TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    let err = |message: String| TlsError::SelfSigned { dir: dir.clone(), message };
    if !(cert.exists() && key.exists()) {
        rampart_core::private_fs::create_dir(&dir).map_err(|e| err(e.to_string()))?;
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let generated = rcgen::generate_simple_self_signed(names).map_err(|e| err(e.to_string()))?;
        write_private(&key, generated.signing_key.serialize_pem().as_bytes()).map_err(|e| err(e.to_string()))?;
        std::fs::write(&cert, generated.cert.pem()).map_err(|e| err(e.to_string()))?;
        tracing::warn!(
            cert = %cert.display(),
            "no TLS certificate configured: generated a self-signed one; browsers will warn. \
             Set [[tls.certificates]] cert/key to your own PEM files."
        );
    } else {
        tracing::warn!(cert = %cert.display(), "no TLS certificate configured: serving the self-signed one");
    }
    Ok(Certificate { cert, key })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn build_table(certs: &[Certificate]) -> Result<Table, TlsError> {
    let mut table = Table::default();
    for c in certs {
        let loaded = load_one(c)?;
        if table.default.is_none() {
            table.default = Some(loaded.key.clone());
        }
        for name in &loaded.names {
            match name.strip_prefix("*.") {
                Some(parent) => table.wildcard.entry(parent.to_string()).or_insert_with(|| loaded.key.clone()),
                None => table.exact.entry(name.clone()).or_insert_with(|| loaded.key.clone()),
            };
        }
        table.files.extend(loaded.files);
    }
    Ok(table)
}

fn load_one(c: &Certificate) -> Result<Loaded, TlsError> {
    let file_err = |path: &Path, message: String| TlsError::File { path: path.to_path_buf(), message };
    let cert_mtime = modified(&c.cert);
    let key_mtime = modified(&c.key);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&c.cert)
        .map_err(|e| file_err(&c.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&c.cert, format!("bad PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_err(&c.cert, "no CERTIFICATE block found".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&c.key).map_err(|e| file_err(&c.key, format!("no usable private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| file_err(&c.key, e.to_string()))?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    certified.keys_match().map_err(|e| file_err(&c.key, format!("does not match {}: {e}", c.cert.display())))?;
    let names = names_of(&chain[0]);
    Ok(Loaded {
        key: Arc::new(certified),
        names,
        files: vec![(c.cert.clone(), cert_mtime), (c.key.clone(), key_mtime)],
    })
}

/// DNS names a certificate serves (subjectAltName dNSName entries), read
/// with a minimal DER walk so no X.509 parser is needed on this path.
fn names_of(cert: &CertificateDer<'_>) -> Vec<String> {
    // subjectAltName OID 2.5.29.17, then an OCTET STRING wrapping a
    // SEQUENCE of GeneralName; dNSName is context tag [2] (0x82).
    const SAN_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
    let der = cert.as_ref();
    let Some(pos) = der.windows(SAN_OID.len()).position(|w| w == SAN_OID) else {
        return Vec::new();
    };
    let mut rest = &der[pos + SAN_OID.len()..];
    // Optional BOOLEAN critical flag.
    if rest.first() == Some(&0x01) {
        rest = rest.get(3..).unwrap_or(&[]);
    }
    let Some((0x04, octets, _)) = read_tlv(rest) else {
        return Vec::new();
    };
    let Some((0x30, mut seq, _)) = read_tlv(octets) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    while let Some((tag, value, next)) = read_tlv(seq) {
        if tag == 0x82 {
            if let Ok(s) = std::str::from_utf8(value) {
                names.push(s.to_ascii_lowercase());
            }
        }
        seq = next;
    }
    names
}

/// Reads one DER tag-length-value; `None` on truncation.
fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path, names: &[&str], stem: &str) -> Certificate {
        let g = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, g.cert.pem()).unwrap();
        std::fs::write(&key, g.signing_key.serialize_pem()).unwrap();
        Certificate { cert, key }
    }

    #[test]
    fn reads_dns_names_from_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let c = write_cert(dir.path(), &["a.example", "*.b.example"], "x");
        let loaded = load_one(&c).unwrap();
        assert_eq!(loaded.names, vec!["a.example", "*.b.example"]);
    }

    #[test]
    fn generates_a_self_signed_certificate_once() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls::default();
        CertResolver::load(&tls, dir.path()).unwrap();
        let first = std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap();
        CertResolver::load(&tls, dir.path()).unwrap();
        assert_eq!(first, std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap());
    }

    #[test]
    fn missing_or_garbage_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not pem").unwrap();
        let tls = Tls { certificates: vec![Certificate { cert: bad.clone(), key: bad.clone() }], ..Tls::default() };
        let e = CertResolver::load(&tls, dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.pem"), "{e}");
        let tls =
            Tls { certificates: vec![Certificate { cert: dir.path().join("nope.crt"), key: bad }], ..Tls::default() };
        let e = CertResolver::load(&tls, dir.path()).unwrap_err().to_string();
        assert!(e.contains("nope.crt"), "{e}");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_cert(dir.path(), &["a.example"], "a");
        let b = write_cert(dir.path(), &["b.example"], "b");
        let tls = Tls { certificates: vec![Certificate { cert: a.cert, key: b.key }], ..Tls::default() };
        let e = CertResolver::load(&tls, dir.path()).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");
    }

    #[test]
    fn truncated_der_does_not_panic() {
        for n in 0..64 {
            let bytes = vec![0x30u8; n];
            let _ = read_tlv(&bytes);
        }
        assert!(read_tlv(&[0x04, 0x85, 1, 2, 3, 4, 5]).is_none());
    }
}
