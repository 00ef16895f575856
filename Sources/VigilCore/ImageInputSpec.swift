/// How an image file becomes a model's input tensor (manifest.json's `input` object): decoded
/// to 8-bit pixels, resized to `height x width` if it differs (bilinear, or refused when
/// `resize` is `.none`), channels taken in `channelOrder`, and each value computed as
/// `(Float(pixel) * scale - mean[c]) / std[c]` in float32, laid out NCHW.
public struct ImageInputSpec: Sendable, Equatable {
    public enum ChannelOrder: String, Sendable, CaseIterable {
        case rgb = "RGB"
        case bgr = "BGR"
        /// One grayscale channel (colour images converted with ITU-R 601-2 luma, as PIL's `L`).
        case gray = "L"
    }

    public enum Resize: String, Sendable, CaseIterable {
        /// Half-pixel-centre bilinear, no antialiasing (OpenCV `INTER_LINEAR`); the record warns.
        case bilinear
        /// An image of another size is refused.
        case none
    }

    public let channels: Int
    public let height: Int
    public let width: Int
    public let channelOrder: ChannelOrder
    public let scale: Float
    public let mean: [Float]
    public let std: [Float]
    public let resize: Resize

    /// `shape` is `[C, H, W]`; mean and std have one value per channel (or one for all).
    package init(
        shape: [Int], channelOrder: ChannelOrder, scale: Double, mean: [Double], std: [Double], resize: Resize = .bilinear
    ) throws(VigilError) {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw VigilError(.package, "image input: shape \(shape) must be [channels, height, width] with sizes > 0")
        }
        guard shape[1] <= 16384, shape[2] <= 16384 else {
            throw VigilError(.package, "image input: \(shape[1])x\(shape[2]) is larger than 16384 pixels on a side")
        }
        let c = shape[0]
        switch channelOrder {
        case .rgb, .bgr:
            guard c == 3 else { throw VigilError(.package, "image input: channel order \(channelOrder.rawValue) needs 3 channels, shape has \(c)") }
        case .gray:
            guard c == 1 else { throw VigilError(.package, "image input: channel order L needs 1 channel, shape has \(c)") }
        }
        guard scale.isFinite, scale > 0 else { throw VigilError(.package, "image input: scale \(scale) must be finite and > 0") }
        let m = mean.count == 1 ? Array(repeating: mean[0], count: c) : mean
        let s = std.count == 1 ? Array(repeating: std[0], count: c) : std
        guard m.count == c, s.count == c else {
            throw VigilError(.package, "image input: mean (\(mean.count) values) and std (\(std.count)) need one value per channel (\(c))")
        }
        guard m.allSatisfy(\.isFinite) else { throw VigilError(.package, "image input: mean \(mean) must be finite") }
        guard s.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw VigilError(.package, "image input: std \(std) must be finite and > 0") }
        channels = c
        height = shape[1]
        width = shape[2]
        self.channelOrder = channelOrder
        self.scale = Float(scale)
        self.mean = m.map { Float($0) }
        self.std = s.map { Float($0) }
        self.resize = resize
    }

    public var shape: [Int] { [channels, height, width] }
    /// Floats per image.
    public var count: Int { channels * height * width }

    /// For a bare model file (no manifest): pixels scaled to [0, 1], no mean/std, RGB (or L).
    package static func unnormalized(shape: [Int]) throws(VigilError) -> ImageInputSpec {
        try ImageInputSpec(
            shape: shape, channelOrder: shape.first == 1 ? .gray : .rgb, scale: 1.0 / 255.0, mean: [0], std: [1])
    }
}
