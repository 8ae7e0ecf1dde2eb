//! Cloud object stores, registered by the bundle itself.
//!
//! datafusion-ffi gives a bundle a default `RuntimeEnv`, so object stores the host registered
//! are invisible here (ffi-brief §6.4). deltalake builds a table's store from its URL and
//! storage options through global factories, which know only `file://` and `memory://` unless
//! a cloud crate registers more. This module registers S3, GCS and Azure with object_store's
//! own URL parsing (credentials and endpoints come from the storage options or the usual
//! environment variables), and deltalake's default log store, whose commits are conditional
//! puts (`PutMode::Create`), so concurrent writers cannot overwrite each other's commit.

use std::sync::{Arc, Once};

use deltalake::logstore::object_store::path::Path;
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use url::Url;

/// URL schemes of the stores this bundle can reach, besides `file://`.
pub const CLOUD_SCHEMES: [&str; 8] = ["s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss"];

/// Registers the cloud schemes once per bundle image.
pub fn register_cloud_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let stores = object_store_factories();
        let logs = logstore_factories();
        for scheme in CLOUD_SCHEMES {
            let Ok(url) = Url::parse(&format!("{scheme}://")) else {
                continue;
            };
            // A cloud crate linked into the same image may have registered a better one.
            if !stores.contains_key(&url) {
                stores.insert(url.clone(), Arc::new(CloudStoreFactory));
            }
            if !logs.contains_key(&url) {
                logs.insert(url, Arc::new(CloudLogStoreFactory));
            }
        }
    });
}

/// Builds an S3, GCS or Azure store with object_store's URL and option parsing.
struct CloudStoreFactory;

impl ObjectStoreFactory for CloudStoreFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        // object_store keys are case-insensitive strings such as `aws_region` or
        // `google_service_account`; unknown keys are ignored by its builders.
        let (store, path) =
            deltalake::logstore::object_store::parse_url_opts(url, config.raw.iter())
                .map_err(|e| DeltaTableError::InvalidTableLocation(format!("{url}: {e}")))?;
        Ok((Arc::new(store), path))
    }
}

/// deltalake's default log store: commits are `PutMode::Create` puts.
struct CloudLogStoreFactory;

impl LogStoreFactory for CloudLogStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
