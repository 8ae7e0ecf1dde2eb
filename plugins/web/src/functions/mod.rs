//! The web-analytics scalar, aggregate and window functions the udfs bundle exports
//! ([`exports`]): functions only, so that the bundle links none of DataFusion's table
//! machinery (the table functions are the udtfs bundle's).
//!
//! The functions are ordinary DataFusion UDFs; [`register_natively`] registers the very same
//! objects into a session without the ABI, which is what tests and benchmarks compare against.

pub mod geo_mean;
pub mod hosts_agg;
pub mod session_duration;
pub mod sessionize;
pub mod time_bucket;
pub mod url;
pub mod url_build;
pub mod url_decode;
pub mod url_nested;
pub mod url_normalize;
pub mod url_parts;

use datafusion::error::Result;
use datafusion::logical_expr::Signature;
use datafusion::prelude::SessionContext;
use df_plugin_api::toolkit::Bundle;

/// What the udfs bundle exports.
pub fn exports(bundle: &mut Bundle) -> Result<()> {
    bundle
        .scalar_udf(url::UrlHost::new())
        .scalar_udf(url_parts::UrlPartsUdf::new())
        .scalar_udf(url_normalize::UrlNormalize::new())
        .scalar_udf(url_build::UrlJoin::new())
        .scalar_udf(url_build::UrlCacheBuster::new())
        .scalar_udf(url_nested::UrlHosts::new())
        .scalar_udf(url_nested::UrlQueryMap::new())
        .scalar_udf(url_decode::UrlDecode::new())
        .aggregate_udf(hosts_agg::TopHosts::new())
        .aggregate_udf(hosts_agg::DistinctHosts::new())
        .window_udf(session_duration::SessionDuration::new())
        .aggregate_udf(geo_mean::GeoMean::new())
        .window_udf(sessionize::Sessionize::new())
        .scalar_udf(time_bucket::TimeBucket::new());
    Ok(())
}

/// Names a signature's parameters (for named arguments and error messages). The names are
/// constants that fit their signatures; the unit tests check that none was dropped.
fn with_names(signature: Signature, names: &[&str]) -> Signature {
    signature
        .clone()
        .with_parameter_names(names.to_vec())
        .unwrap_or(signature)
}

datafusion::common::extensions_options! {
    /// The bundle's session options (`SET udfs.<name> = ...`), as declared in its manifest.
    pub struct UdfsOptions {
        /// `url_host` drops a leading `www.`.
        pub strip_www: bool, default = false
    }
}

impl datafusion::common::config::ConfigExtension for UdfsOptions {
    const PREFIX: &'static str = "udfs";
}

/// Registers the bundle's functions directly (linked in, no ABI): the native baseline.
pub fn register_natively(ctx: &SessionContext) {
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .extensions
        .insert(UdfsOptions::default());
    ctx.register_udf(url::UrlHost::new().into());
    ctx.register_udf(url_parts::UrlPartsUdf::new().into());
    ctx.register_udf(url_normalize::UrlNormalize::new().into());
    ctx.register_udf(url_build::UrlJoin::new().into());
    ctx.register_udf(url_build::UrlCacheBuster::new().into());
    ctx.register_udf(url_nested::UrlHosts::new().into());
    ctx.register_udf(url_nested::UrlQueryMap::new().into());
    ctx.register_udf(url_decode::UrlDecode::new().into());
    ctx.register_udaf(hosts_agg::TopHosts::new().into());
    ctx.register_udaf(hosts_agg::DistinctHosts::new().into());
    ctx.register_udwf(session_duration::SessionDuration::new().into());
    ctx.register_udaf(geo_mean::GeoMean::new().into());
    ctx.register_udwf(sessionize::Sessionize::new().into());
    ctx.register_udf(time_bucket::TimeBucket::new().into());
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{AggregateUDFImpl, ScalarUDFImpl, WindowUDFImpl};

    #[test]
    fn every_function_names_its_parameters() {
        assert!(
            super::url::UrlHost::new()
                .signature()
                .parameter_names
                .is_some()
        );
        assert!(
            super::geo_mean::GeoMean::new()
                .signature()
                .parameter_names
                .is_some()
        );
        assert!(
            super::sessionize::Sessionize::new()
                .signature()
                .parameter_names
                .is_some()
        );
    }
}
