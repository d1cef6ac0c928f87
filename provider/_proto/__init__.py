"""Generated tfplugin6, go-plugin and grpc.health stubs; regenerate with generate.sh, never edit by hand."""
