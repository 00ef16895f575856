package import Foundation
internal import CJPEG
internal import CPNG
package import VigilCore
#if canImport(Glibc)
import Glibc
#endif

/// An image decoded to 8-bit pixels, rows top to bottom, channels interleaved.
package struct DecodedImage: Sendable {
    package enum Format: String, Sendable {
        case png = "PNG"
        case jpeg = "JPEG"
    }

    package let width: Int
    package let height: Int
    /// 1 (grayscale) or 3 (RGB).
    package let channels: Int
    package let pixels: [UInt8]
    package let format: Format
    /// The file had an alpha channel or transparency, which was dropped.
    package let droppedAlpha: Bool
}

/// Decodes PNG (Debian's libpng) and JPEG (libjpeg-turbo) files, recognised by their content.
/// The C libraries report errors through hooks that never jump over Swift frames and never
/// exit (Sources/CPNG/shim.h, Sources/CJPEG/shim.h): a corrupt or truncated file is a
/// `VigilError.input` naming the file and libpng's or libjpeg's reason.
package enum ImageDecoder {
    /// Larger images are refused before any pixel buffer is allocated.
    package static let maxSide = 16384

    package static func decode(_ data: Data, name: String) throws -> DecodedImage {
        guard !data.isEmpty else { throw VigilError(.input, "\(name): the image file is empty") }
        let isPNG = data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let isJPEG = data.starts(with: [0xFF, 0xD8, 0xFF])
        guard isPNG || isJPEG else {
            throw VigilError(.input, "\(name): not a PNG or JPEG image (unrecognised signature)")
        }
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0, hadAlpha: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let status: Int32 = data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            return message.withUnsafeMutableBufferPointer { m in
                if isPNG {
                    return vigil_png_decode(
                        base, raw.count, UInt32(maxSide), &pixels, &width, &height, &channels, &hadAlpha,
                        m.baseAddress, m.count)
                }
                return vigil_jpeg_decode(base, raw.count, UInt32(maxSide), &pixels, &width, &height, &channels, m.baseAddress, m.count)
            }
        }
        let format: DecodedImage.Format = isPNG ? .png : .jpeg
        guard status == 0, let pixels else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw VigilError(.input, "\(name): cannot decode the \(format.rawValue) image (\(reason.isEmpty ? "corrupt data" : reason))")
        }
        defer { free(pixels) }
        guard width > 0, height > 0, width <= maxSide, height <= maxSide, channels == 1 || channels == 3 else {
            throw VigilError(.input, "\(name): decoded to \(width)x\(height) with \(channels) channels; expected sides in 1...\(maxSide) and 1 or 3 channels")
        }
        let count = try Untrusted.product([Int(width), Int(height), Int(channels)], limit: maxSide * maxSide * 3, place: "\(name): image size", what: "pixel values")
        return DecodedImage(
            width: Int(width), height: Int(height), channels: Int(channels),
            pixels: Array(UnsafeBufferPointer(start: pixels, count: count)), format: format, droppedAlpha: hadAlpha != 0)
    }
}
