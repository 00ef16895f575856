package import Foundation
package import VigilCore
package import VigilExplain
package import VigilGuard
internal import VigilFormats

/// A picture of an image model's attribution: the input as the model saw it (the manifest's
/// preprocessing undone: pixel = (x · std + mean) / scale), and beside it the same image in grey
/// with the attribution painted over it — red where a pixel raised the margin, blue where it
/// lowered it, opacity growing with |contribution| summed over the channels at that pixel. The
/// colour saturates at the 99th percentile of the non-zero |contributions| (so one extreme pixel
/// does not wash out the rest); a bar under the panels shows the scale from blue through grey to
/// red. Pixels are enlarged to whole squares so that the panels are about 256 pixels tall.
package struct Heatmap: Sendable {
    package let width: Int
    package let height: Int
    /// `width * height * 3` bytes, rows top to bottom.
    package let rgb: [UInt8]
    /// |contribution| at which the colour is full (the 99th percentile).
    package let saturation: Double

    /// - Parameters:
    ///   - attribution: an integrated-gradients attribution of one image (`featureCount` = C·H·W).
    ///   - spec: the model's image input.
    ///   - output: which output's attribution (0 for a binary model).
    package init(_ attribution: Attribution, spec: ImageInputSpec, output: Int = 0) throws(VigilError) {
        let c = spec.channels, h = spec.height, w = spec.width, plane = h * w
        guard attribution.featureCount == spec.count, attribution.values.count == spec.count,
              output >= 0, output < attribution.outputCount else {
            throw VigilError(.usage, "heat-map: the attribution has \(attribution.featureCount) values per output; the image input has \(spec.count)")
        }
        // Per pixel: the contribution summed over channels, and the displayed colour.
        var map = [Double](repeating: 0, count: plane)
        for ch in 0..<c {
            for i in 0..<plane { map[i] += attribution.contribution(output: output, feature: ch * plane + i) }
        }
        let magnitudes = map.map(abs).filter { $0 > 0 && $0.isFinite }.sorted()
        let top = magnitudes.isEmpty ? 0 : magnitudes[min(magnitudes.count - 1, Int(Double(magnitudes.count - 1) * 0.99))]
        saturation = top
        func pixel(_ ch: Int, _ i: Int) -> Double {
            let x = attribution.values[ch * plane + i]
            let p = (x * Double(spec.std[ch]) + Double(spec.mean[ch])) / Double(spec.scale)
            return min(255, max(0, p.isFinite ? p : 0))
        }
        var original = [Double](repeating: 0, count: plane * 3)
        for i in 0..<plane {
            for k in 0..<3 {
                // Grey models show grey; BGR models are shown in RGB.
                let ch = c == 1 ? 0 : (spec.channelOrder == .bgr ? 2 - k : k)
                original[i * 3 + k] = pixel(ch, i)
            }
        }
        let scale = max(1, 256 / max(h, w))
        let gap = 4, barHeight = 10
        let panelW = w * scale, panelH = h * scale
        let fullWidth = panelW * 2 + gap, fullHeight = panelH + gap + barHeight
        width = fullWidth
        height = fullHeight
        var out = [UInt8](repeating: 255, count: fullWidth * fullHeight * 3)
        let red: (Double, Double, Double) = (220, 30, 30), blue: (Double, Double, Double) = (30, 90, 230)
        func overlay(_ grey: Double, _ value: Double) -> (Double, Double, Double) {
            let alpha = top > 0 ? min(1, abs(value) / top) : 0
            let col = value >= 0 ? red : blue
            return ((1 - alpha) * grey + alpha * col.0, (1 - alpha) * grey + alpha * col.1, (1 - alpha) * grey + alpha * col.2)
        }
        func put(_ x: Int, _ y: Int, _ r: Double, _ g: Double, _ b: Double) {
            let o = (y * fullWidth + x) * 3
            out[o] = UInt8(min(255, max(0, r.rounded())))
            out[o + 1] = UInt8(min(255, max(0, g.rounded())))
            out[o + 2] = UInt8(min(255, max(0, b.rounded())))
        }
        for y in 0..<panelH {
            for x in 0..<panelW {
                let i = (y / scale) * w + x / scale
                let (r, g, b) = (original[i * 3], original[i * 3 + 1], original[i * 3 + 2])
                put(x, y, r, g, b)
                let grey = 0.35 * 255 + 0.5 * (0.299 * r + 0.587 * g + 0.114 * b)
                let (or, og, ob) = overlay(grey, map[i])
                put(panelW + gap + x, y, or, og, ob)
            }
        }
        // The colour bar: -saturation (blue) ... 0 (grey) ... +saturation (red) under the overlay.
        for x in 0..<panelW {
            let v = (Double(x) / Double(max(1, panelW - 1)) * 2 - 1) * (top > 0 ? top : 1)
            let (r, g, b) = top > 0 ? overlay(160, v) : (160, 160, 160)
            for y in (panelH + gap)..<fullHeight { put(panelW + gap + x, y, r, g, b) }
        }
        rgb = out
    }

    /// Writes the heat-map as a PNG file.
    package func write(to url: URL) throws(VigilError) {
        try PNGEncoder.writeRGB(rgb, width: width, height: height, to: url)
    }
}
