//! A repository in S3-compatible object storage (AWS S3, MinIO, Ceph,
//! Garage, ...), through the `object_store` crate.
//!
//! Locations follow restic's habit: `s3:http://HOST:PORT/BUCKET/PREFIX`
//! names the endpoint; `s3://BUCKET/PREFIX` uses AWS's (or
//! `AWS_ENDPOINT_URL`). Credentials and region come from the usual
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` and
//! `AWS_REGION` / `AWS_DEFAULT_REGION` variables, never from the location.
//!
//! An S3 PUT makes an object appear whole or not at all, which is what
//! the repository format needs from `put`. The calls are synchronous for
//! the repository code: each runs to completion on this backend's own
//! small runtime.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::backend::Backend;
use crate::{Error, Result};

/// A repository under a prefix of an S3 bucket.
pub struct S3 {
    store: Arc<AmazonS3>,
    prefix: String,
    location: String,
    runtime: tokio::runtime::Runtime,
}

/// The parts of an `s3:` location.
#[derive(Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `http://127.0.0.1:9000`, or none for AWS's own endpoint.
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The folder inside the bucket (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX]` or
    /// `s3://BUCKET[/PREFIX]`; `None` when `location` is not an S3 one.
    pub fn parse(location: &str) -> Option<Result<S3Location>> {
        let rest = location.strip_prefix("s3:")?;
        let bad = |why: &str| Error::Repository(format!("{location}: {why}"));
        let (endpoint, path) = if let Some(path) = rest.strip_prefix("//") {
            (None, path)
        } else {
            let scheme_end = match rest.find("://") {
                Some(i) if rest.starts_with("http://") || rest.starts_with("https://") => i + 3,
                _ => return Some(Err(bad("expected s3:http(s)://HOST/BUCKET[/PREFIX] or s3://BUCKET[/PREFIX]"))),
            };
            let host_end = rest[scheme_end..].find('/').map_or(rest.len(), |i| scheme_end + i);
            (Some(rest[..host_end].to_string()), rest.get(host_end + 1..).unwrap_or(""))
        };
        let path = path.trim_matches('/');
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        if bucket.is_empty() {
            return Some(Err(bad("no bucket named")));
        }
        Some(Ok(S3Location { endpoint, bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() }))
    }
}

fn storage_error(what: &str) -> impl FnOnce(object_store::Error) -> Error + '_ {
    move |e| {
        let kind = match e {
            object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        Error::Io { what: what.to_string(), source: std::io::Error::new(kind, e.to_string()) }
    }
}

impl S3 {
    /// Connects to the S3 location `location` (see [`S3Location::parse`]).
    pub fn new(location: &str) -> Result<S3> {
        let parsed = S3Location::parse(location)
            .ok_or_else(|| Error::Repository(format!("{location}: not an s3: location")))??;
        // reqwest is built without a default crypto provider: use ring,
        // as the rest of Rampart does (already set is fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&parsed.bucket).with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        });
        if let Some(endpoint) = &parsed.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        let store = builder.build().map_err(storage_error(location))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rampart-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::Io { what: "S3 client runtime".into(), source: e })?;
        Ok(S3 { store: Arc::new(store), prefix: parsed.prefix, location: location.to_string(), runtime })
    }

    fn key(&self, name: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(name)
        } else {
            StorePath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn what(&self, name: &str) -> String {
        format!("{name} ({})", self.location)
    }
}

impl Backend for S3 {
    fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        let what = self.what(name);
        let payload = PutPayload::from(data.to_vec());
        self.runtime.block_on(self.store.put(&self.key(name), payload)).map_err(storage_error(&what))?;
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        let what = self.what(name);
        let bytes = self.runtime.block_on(async {
            let got = self.store.get(&self.key(name)).await?;
            got.bytes().await
        });
        Ok(bytes.map_err(storage_error(&what))?.to_vec())
    }

    fn get_range(&self, name: &str, offset: u64, length: usize) -> Result<Vec<u8>> {
        let what = self.what(name);
        let range = offset..offset + length as u64;
        let bytes =
            self.runtime.block_on(self.store.get_range(&self.key(name), range)).map_err(storage_error(&what))?;
        if bytes.len() != length {
            return Err(Error::Damaged(format!("{name} (truncated)")));
        }
        Ok(bytes.to_vec())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let what = self.what(prefix);
        let under = self.key(prefix.trim_end_matches('/'));
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let metas: Vec<_> = self.runtime.block_on(self.store.list(Some(&under)).collect::<Vec<_>>());
        let mut out = Vec::with_capacity(metas.len());
        for meta in metas {
            let meta = meta.map_err(storage_error(&what))?;
            let full = meta.location.to_string();
            if let Some(name) = full.strip_prefix(&strip) {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let what = self.what(name);
        self.runtime.block_on(self.store.delete(&self.key(name))).map_err(storage_error(&what))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        let what = self.what(name);
        match self.runtime.block_on(self.store.head(&self.key(name))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error(&what)(e)),
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_as_restic_writes_them() {
        let p = |s: &str| S3Location::parse(s).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            p("s3:http://127.0.0.1:9000/backups/app/db"),
            Some(Ok(S3Location {
                endpoint: Some("http://127.0.0.1:9000".into()),
                bucket: "backups".into(),
                prefix: "app/db".into()
            }))
        );
        assert_eq!(
            p("s3://backups"),
            Some(Ok(S3Location { endpoint: None, bucket: "backups".into(), prefix: String::new() }))
        );
        assert_eq!(p("/srv/backups"), None);
        assert!(p("s3:http://host:9000/").unwrap().unwrap_err().contains("no bucket"));
        assert!(p("s3:ftp://host/b").unwrap().unwrap_err().contains("expected s3:"));
    }
}
