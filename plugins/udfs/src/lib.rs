//! Web-analytics functions for DataFusion, exported as a df-plugin bundle: scalar, aggregate
//! and window functions only, so that the bundle links none of DataFusion's table machinery
//! (the table functions are the udtfs bundle's).
//!
//! The code is `df-plugin-web`'s ([`df_plugin_web::functions`]): tests and benchmarks register
//! it natively through that crate, so that nothing links this crate's entry points a second
//! time.

df_plugin_api::export_bundle!(df_plugin_web::functions::exports);
