"""Generated protobuf code of protos/ (see protos/generate.py)."""
