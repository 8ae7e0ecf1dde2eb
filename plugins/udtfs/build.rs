fn main() {
    df_plugin_api::build::embed_manifest("../../manifests/udtfs.toml");
}
