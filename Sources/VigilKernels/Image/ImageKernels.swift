/// Image preprocessing kernels: 8-bit interleaved pixels in, float32 planes out.
package enum ImageKernels {
    /// Bilinear resize of an interleaved 8-bit image (`channels` values per pixel) with
    /// half-pixel centres and edge clamping (OpenCV's `INTER_LINEAR`, ONNX Resize `linear` with
    /// `half_pixel`; no antialiasing filter when shrinking). Each output value is rounded to the
    /// nearest integer, so a resized image is again an 8-bit image.
    package static func resizeBilinear(
        source: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int,
        into destination: UnsafeMutablePointer<UInt8>, width outWidth: Int, height outHeight: Int
    ) {
        func taps(_ out: Int, _ size: Int, _ outSize: Int) -> (Int, Int, Double) {
            var s = (Double(out) + 0.5) * Double(size) / Double(outSize) - 0.5
            if s < 0 { s = 0 }
            let i0 = min(Int(s), size - 1)
            let i1 = min(i0 + 1, size - 1)
            return (i0, i1, s - Double(i0))
        }
        let cols = (0..<outWidth).map { taps($0, width, outWidth) }
        for y in 0..<outHeight {
            let (y0, y1, fy) = taps(y, height, outHeight)
            for x in 0..<outWidth {
                let (x0, x1, fx) = cols[x]
                for c in 0..<channels {
                    let p00 = Double(source[(y0 * width + x0) * channels + c])
                    let p01 = Double(source[(y0 * width + x1) * channels + c])
                    let p10 = Double(source[(y1 * width + x0) * channels + c])
                    let p11 = Double(source[(y1 * width + x1) * channels + c])
                    let top = p00 + (p01 - p00) * fx
                    let bottom = p10 + (p11 - p10) * fx
                    let v = (top + (bottom - top) * fy).rounded()
                    destination[(y * outWidth + x) * channels + c] = UInt8(max(0, min(255, v)))
                }
            }
        }
    }

    /// Interleaved 8-bit pixels to planar float32 (NCHW for one sample): plane c takes source
    /// channel `channelMap[c]`, and each value is `(Float(pixel) * scale - mean[c]) / std[c]`,
    /// evaluated in float32 in that order (as PyTorch's `ToTensor` + `Normalize` on 8-bit input).
    package static func normalize(
        source: UnsafePointer<UInt8>, pixels: Int, sourceChannels: Int, channelMap: [Int],
        scale: Float, mean: [Float], std: [Float], into destination: UnsafeMutablePointer<Float>
    ) {
        for (c, sc) in channelMap.enumerated() {
            let plane = destination + c * pixels
            let m = mean[c], s = std[c]
            for p in 0..<pixels {
                plane[p] = (Float(source[p * sourceChannels + sc]) * scale - m) / s
            }
        }
    }
}
