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
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, Signature, WindowUDF};
use datafusion::prelude::SessionContext;
use df_plugin_api::toolkit::Bundle;

/// The scalar functions, in the order the bundle exports them.
fn scalar_udfs() -> Vec<ScalarUDF> {
    vec![
        url::UrlHost::new().into(),
        url_parts::UrlPartsUdf::new().into(),
        url_normalize::UrlNormalize::new().into(),
        url_build::UrlJoin::new().into(),
        url_build::UrlCacheBuster::new().into(),
        url_nested::UrlHosts::new().into(),
        url_nested::UrlQueryMap::new().into(),
        url_decode::UrlDecode::new().into(),
        time_bucket::time_bucket(),
    ]
}

/// The aggregate functions, in the order the bundle exports them.
fn aggregate_udfs() -> Vec<AggregateUDF> {
    vec![
        hosts_agg::TopHosts::new().into(),
        hosts_agg::DistinctHosts::new().into(),
        geo_mean::GeoMean::new().into(),
    ]
}

/// The window functions, in the order the bundle exports them.
fn window_udfs() -> Vec<WindowUDF> {
    vec![
        session_duration::SessionDuration::new().into(),
        sessionize::Sessionize::new().into(),
    ]
}

/// What the udfs bundle exports.
pub fn exports(bundle: &mut Bundle) -> Result<()> {
    for udf in scalar_udfs() {
        bundle.scalar_udf(udf);
    }
    for udaf in aggregate_udfs() {
        bundle.aggregate_udf(udaf);
    }
    for udwf in window_udfs() {
        bundle.window_udf(udwf);
    }
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
    for udf in scalar_udfs() {
        ctx.register_udf(udf);
    }
    for udaf in aggregate_udfs() {
        ctx.register_udaf(udaf);
    }
    for udwf in window_udfs() {
        ctx.register_udwf(udwf);
    }
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
