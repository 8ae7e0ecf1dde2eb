fn main() {
    df_plugin_api::build::embed_manifest("manifest.toml");
}
