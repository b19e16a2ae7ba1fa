"""One builder module per model family: build(name, record, weights_dir) -> TokenBackbone."""
