//! Object stores by URL: `file://`, `memory://`, `s3://`, `gs://`, `az://` (and the spellings
//! `object_store` knows), driven from a small tokio runtime so callers stay synchronous.
//!
//! Credentials come from the environment as each cloud's SDK reads them (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`); `options` go to the store's builder over them.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};
use url::Url;

use crate::spec::StoreOptions;

/// The URL schemes an object store location may use.
pub const SCHEMES: &[&str] = &["file", "memory", "s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss"];

/// An opened store and the prefix the URL points at inside it.
#[derive(Clone, Debug)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
    /// The URL as given, for messages (it never holds a credential: those are options or env).
    pub url: String,
}

/// An object's version, for conditional writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// Why a store could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Whether `text` starts with a scheme orrery can open (the rest may still be a template).
pub fn known_scheme(text: &str) -> Result<(), String> {
    let Some((scheme, _)) = text.split_once("://") else {
        return Err(format!("`{text}` is not a URL: it needs a scheme such as `s3://` or `file://`"));
    };
    if SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) { Ok(()) } else { Err(format!("unknown object store scheme `{scheme}://`")) }
}

/// Opens the store a URL names, with builder options over the environment's credentials.
pub fn open(url: &str, options: &StoreOptions) -> Result<Location, StoreError> {
    install_crypto();
    let parsed = Url::parse(url).map_err(|e| StoreError(format!("`{url}` is not a valid URL: {e}")))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed)
        .map_err(|_| StoreError(format!("unknown object store scheme `{}://` in `{url}`", parsed.scheme())))?;
    let prefix = ObjectPath::parse(path).map_err(|e| StoreError(format!("bad object path in `{url}`: {e}")))?;
    let invalid = |e: object_store::Error| StoreError(format!("cannot open `{url}`: {e}"));
    let options: Vec<(String, String)> = options.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        ObjectStoreScheme::Memory => Arc::new(object_store::memory::InMemory::new()),
        ObjectStoreScheme::AmazonS3 => {
            // Conditional writes (state and locks) use If-Match / If-None-Match, as S3 has them.
            let builder = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_config(object_store::aws::AmazonS3ConfigKey::ConditionalPut, "etag");
            Arc::new(configured(builder, &options, "S3", |b, k, v| b.with_config(k, v))?.build().map_err(invalid)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let builder = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
            Arc::new(configured(builder, &options, "GCS", |b, k, v| b.with_config(k, v))?.build().map_err(invalid)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
            Arc::new(configured(builder, &options, "Azure", |b, k, v| b.with_config(k, v))?.build().map_err(invalid)?)
        }
        _ => return Err(StoreError(format!("unknown object store scheme `{}://` in `{url}`", parsed.scheme()))),
    };
    Ok(Location { store, prefix, url: url.to_string() })
}

/// Applies `[..].options` to a store builder; an option the store does not know is an error.
fn configured<B, K: std::str::FromStr>(
    mut builder: B,
    options: &[(String, String)],
    store: &str,
    set: impl Fn(B, K, String) -> B,
) -> Result<B, StoreError> {
    for (key, value) in options {
        let parsed = key.parse().map_err(|_| StoreError(format!("unknown {store} option `{key}`")))?;
        builder = set(builder, parsed, value.clone());
    }
    Ok(builder)
}

impl Location {
    /// The key of `relative` (a `/`-separated path) under the prefix.
    pub fn key(&self, relative: &str) -> ObjectPath {
        let mut parts: Vec<String> = self.prefix.parts().map(|p| p.as_ref().to_string()).collect();
        parts.extend(relative.split('/').filter(|p| !p.is_empty()).map(str::to_string));
        ObjectPath::from_iter(parts)
    }

    /// Writes `bytes` at `relative` under the prefix.
    pub fn put(&self, relative: &str, bytes: Vec<u8>, timeout: Duration) -> Result<(), StoreError> {
        let key = self.key(relative);
        block_on(timeout, self.store.put(&key, PutPayload::from(bytes)))
            .and_then(|r| r.map(|_| ()).map_err(|e| StoreError(format!("cannot write `{key}` to {}: {e}", self.url))))
    }

    /// Writes many files, several at a time; stops at the first error.
    pub fn put_all(&self, files: Vec<(String, Vec<u8>)>, timeout: Duration) -> Result<usize, StoreError> {
        use futures_util::StreamExt;
        let count = files.len();
        let uploads = futures_util::stream::iter(files.into_iter().map(|(relative, bytes)| {
            let key = self.key(&relative);
            let store = self.store.clone();
            async move { store.put(&key, PutPayload::from(bytes)).await.map_err(|e| (key, e)) }
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>();
        let results = block_on(timeout, uploads)?;
        for result in results {
            if let Err((key, e)) = result {
                return Err(StoreError(format!("cannot write `{key}` to {}: {e}", self.url)));
            }
        }
        Ok(count)
    }

    /// Reads `relative` with its version; `None` when it does not exist.
    pub fn get_versioned(&self, relative: &str, timeout: Duration) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        let key = self.key(relative);
        let read = async {
            let result = self.store.get(&key).await?;
            let version = Version { e_tag: result.meta.e_tag.clone(), version: result.meta.version.clone() };
            Ok::<_, object_store::Error>((result.bytes().await?.to_vec(), version))
        };
        match block_on(timeout, read)? {
            Ok(found) => Ok(Some(found)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError(format!("cannot read `{key}` from {}: {e}", self.url))),
        }
    }

    /// Writes `relative` only if it is still at `expected` (`None`: only if it does not exist);
    /// `Ok(None)` when another writer got there first.
    pub fn put_if(
        &self,
        relative: &str,
        bytes: Vec<u8>,
        expected: Option<&Version>,
        timeout: Duration,
    ) -> Result<Option<Version>, StoreError> {
        let key = self.key(relative);
        let mode = match expected {
            None => object_store::PutMode::Create,
            Some(v) => object_store::PutMode::Update(object_store::UpdateVersion { e_tag: v.e_tag.clone(), version: v.version.clone() }),
        };
        let put = self.store.put_opts(&key, PutPayload::from(bytes), mode.into());
        match block_on(timeout, put)? {
            Ok(result) => Ok(Some(Version { e_tag: result.e_tag, version: result.version })),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(None),
            Err(e) => Err(StoreError(format!("cannot write `{key}` to {}: {e}", self.url))),
        }
    }

    /// Deletes `relative` under the prefix.
    pub fn delete(&self, relative: &str, timeout: Duration) -> Result<(), StoreError> {
        let key = self.key(relative);
        block_on(timeout, self.store.delete(&key))?.map_err(|e| StoreError(format!("cannot delete `{key}` from {}: {e}", self.url)))
    }

    /// Reads `relative` under the prefix.
    pub fn get(&self, relative: &str, timeout: Duration) -> Result<Vec<u8>, StoreError> {
        let key = self.key(relative);
        let read = async { self.store.get(&key).await?.bytes().await };
        block_on(timeout, read)?.map(|b| b.to_vec()).map_err(|e| StoreError(format!("cannot read `{key}` from {}: {e}", self.url)))
    }
}

/// Runs one future to completion on a fresh current-thread runtime, giving up after `timeout`.
pub fn block_on<F: Future>(timeout: Duration, future: F) -> Result<F::Output, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError(format!("cannot start the I/O runtime: {e}")))?;
    runtime
        .block_on(async { tokio::time::timeout(timeout, future).await })
        .map_err(|_| StoreError(format!("timed out after {}", humantime::format_duration(timeout))))
}

/// rustls needs one process-wide crypto provider; ring builds without cmake.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_checked_before_templates_render() {
        assert!(known_scheme("s3://bucket/{{ run_id }}").is_ok());
        assert!(known_scheme("file:///tmp/x").is_ok());
        assert!(known_scheme("ftp://host/x").unwrap_err().contains("ftp://"));
        assert!(known_scheme("bucket/x").unwrap_err().contains("needs a scheme"));
    }

    #[test]
    fn file_urls_write_under_their_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/out/run", dir.path().display());
        let location = open(&url, &StoreOptions::new()).unwrap();
        location.put("compiled/a.sql", b"select 1".to_vec(), Duration::from_secs(5)).unwrap();
        let written = std::fs::read(dir.path().join("out/run/compiled/a.sql")).unwrap();
        assert_eq!(written, b"select 1");
        assert_eq!(location.get("compiled/a.sql", Duration::from_secs(5)).unwrap(), b"select 1");
    }
}
