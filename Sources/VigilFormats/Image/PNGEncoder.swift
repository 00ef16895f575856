package import Foundation
internal import CPNG
package import VigilCore

/// Writes PNG files through libpng (heat-maps of attributions).
package enum PNGEncoder {
    /// Writes `rgb` (`width * height * 3` bytes, rows top to bottom) to `url`.
    /// - Throws: `VigilError` (`.io`) naming the file and libpng's message.
    package static func writeRGB(_ rgb: [UInt8], width: Int, height: Int, to url: URL) throws(VigilError) {
        guard width > 0, height > 0, width <= ImageDecoder.maxSide, height <= ImageDecoder.maxSide,
              rgb.count == width * height * 3 else {
            throw VigilError(.usage, "\(url.path): a \(width)x\(height) RGB image needs \(max(0, width * height * 3)) bytes, got \(rgb.count)")
        }
        var message = [CChar](repeating: 0, count: 256)
        let status = rgb.withUnsafeBufferPointer { px in
            message.withUnsafeMutableBufferPointer { m in
                vigil_png_write_rgb(url.path, px.baseAddress!, UInt32(width), UInt32(height), m.baseAddress!, m.count)
            }
        }
        guard status == 0 else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw VigilError(.io, "\(url.path): cannot write the PNG: \(text)")
        }
    }
}
