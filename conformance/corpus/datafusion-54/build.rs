//! a bundle whose ABI record says it was built for DataFusion 54.0.0: the record is built to lie, so that the host must refuse it.
use df_plugin_api::record::RecordOverrides;

fn main() {
    let overrides = RecordOverrides {
        datafusion_version: Some("54.0.0"),
        ..RecordOverrides::default()
    };
    if let Err(e) = df_plugin_api::build::Embed::new("manifest.toml")
        .override_record(overrides)
        .write()
    {
        panic!("cannot embed manifest.toml: {e}");
    }
}
