package import VigilCore
package import VigilFormats
internal import VigilKernels

extension ImageInputSpec {
    /// Writes the model input for one decoded image into `out` (`count` floats, NCHW for one
    /// sample) and returns what preprocessing changed (for the record's warnings): a dropped
    /// alpha channel, a colour conversion, a resize. An image of another size is resized
    /// bilinearly, or refused when `resize` is `.none`.
    package func tensor(from image: DecodedImage, name: String, into out: UnsafeMutablePointer<Float>) throws -> [String] {
        var notes: [String] = []
        if image.droppedAlpha { notes.append("\(name): the alpha channel was ignored") }
        var pixels = image.pixels
        var channels = image.channels
        if channelOrder == .gray && channels == 3 {
            // ITU-R 601-2 luma in PIL's fixed point: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
            var gray = [UInt8](repeating: 0, count: image.width * image.height)
            for p in 0..<gray.count {
                let r = UInt32(pixels[3 * p]), g = UInt32(pixels[3 * p + 1]), b = UInt32(pixels[3 * p + 2])
                gray[p] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
            }
            pixels = gray
            channels = 1
            notes.append("\(name): a colour image was converted to grayscale")
        } else if channelOrder != .gray && channels == 1 {
            notes.append("\(name): a grayscale image was read as \(channelOrder.rawValue) (the gray value in every channel)")
        }
        if image.width != width || image.height != height {
            guard resize == .bilinear else {
                throw VigilError(.input, "\(name): the image is \(image.width)x\(image.height) but the model takes \(width)x\(height) and the manifest's resize rule is 'none'")
            }
            var resized = [UInt8](repeating: 0, count: width * height * channels)
            pixels.withUnsafeBufferPointer { src in
                resized.withUnsafeMutableBufferPointer { dst in
                    ImageKernels.resizeBilinear(
                        source: src.baseAddress!, width: image.width, height: image.height, channels: channels,
                        into: dst.baseAddress!, width: width, height: height)
                }
            }
            pixels = resized
            notes.append("\(name): resized from \(image.width)x\(image.height) to \(width)x\(height) (bilinear)")
        }
        let map: [Int]
        switch channelOrder {
        case .rgb: map = channels == 1 ? [0, 0, 0] : [0, 1, 2]
        case .bgr: map = channels == 1 ? [0, 0, 0] : [2, 1, 0]
        case .gray: map = [0]
        }
        pixels.withUnsafeBufferPointer { src in
            ImageKernels.normalize(
                source: src.baseAddress!, pixels: width * height, sourceChannels: channels, channelMap: map,
                scale: scale, mean: mean, std: std, into: out)
        }
        return notes
    }
}
