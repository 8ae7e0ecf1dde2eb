//! a bundle whose ABI record claims plugin ABI 2.0: the record is built to lie, so that the host must refuse it.
use df_plugin_api::record::RecordOverrides;

fn main() {
    let overrides = RecordOverrides {
        abi_major: Some(2),
        ..RecordOverrides::default()
    };
    if let Err(e) = df_plugin_api::build::Embed::new("manifest.toml")
        .override_record(overrides)
        .write()
    {
        panic!("cannot embed manifest.toml: {e}");
    }
}
