//! Version 1 of the upgrade bundle also stands for a bundle built for plugin ABI 1.0 (before
//! planners): its record says 1.0, so a 1.1 host must start it through the 1.0 `init`.
use df_plugin_api::record::RecordOverrides;

fn main() {
    let overrides = RecordOverrides {
        abi_minor: Some(0),
        ..RecordOverrides::default()
    };
    if let Err(e) = df_plugin_api::build::Embed::new("manifest.toml")
        .override_record(overrides)
        .write()
    {
        panic!("cannot embed manifest.toml: {e}");
    }
}
