#!/usr/bin/env bash
# Regenerates onnx-ml.pb.swift from onnx-ml.proto (copied from the `onnx` 1.19.1 wheel).
# Needs Debian's `protoc` (protobuf-compiler) and swift-protobuf 1.39.0's `protoc-gen-swift`:
#   git clone <swift-protobuf> /tmp/swift-protobuf && cd /tmp/swift-protobuf && git checkout 1.39.0
#   swift build -c release --product protoc-gen-swift
# Run by hand from the repository root; CI never runs code generators.
set -euo pipefail
PLUGIN=${PROTOC_GEN_SWIFT:-/tmp/swift-protobuf/.build/release/protoc-gen-swift}
cd "$(dirname "$0")"
protoc --plugin=protoc-gen-swift="$PLUGIN" --swift_opt=Visibility=Public --swift_out=. onnx-ml.proto
