/// The geometry of a 2-D convolution or pooling window over NCHW float32 data. Kernels see only
/// this (never IR types); the IR builder resolves ONNX attributes (`auto_pad`, `ceil_mode`,
/// 1-D ops as height 1) into it and checks it with `validate()`.
///
/// Output pixel (oh, ow) reads input rows `oh * strideHeight - padTop + i * dilationHeight` for
/// kernel row `i`; a tap outside `0..<inHeight` (and likewise for width) is padding: zero for a
/// convolution, skipped by max pooling, and counted or not by average pooling.
package struct Conv2DGeometry: Sendable, Equatable, CustomStringConvertible {
    package var inChannels: Int
    package var inHeight: Int
    package var inWidth: Int
    package var outChannels: Int
    package var outHeight: Int
    package var outWidth: Int
    package var kernelHeight: Int
    package var kernelWidth: Int
    package var strideHeight = 1
    package var strideWidth = 1
    package var dilationHeight = 1
    package var dilationWidth = 1
    package var padTop = 0
    package var padLeft = 0
    package var padBottom = 0
    package var padRight = 0
    /// Channel groups of a convolution (1: dense; `inChannels`: depthwise). Pooling uses 1.
    package var groups = 1

    package init(
        inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int, outHeight: Int, outWidth: Int,
        kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
        dilationHeight: Int = 1, dilationWidth: Int = 1, padTop: Int = 0, padLeft: Int = 0,
        padBottom: Int = 0, padRight: Int = 0, groups: Int = 1
    ) {
        self.inChannels = inChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outChannels = outChannels
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        self.padTop = padTop
        self.padLeft = padLeft
        self.padBottom = padBottom
        self.padRight = padRight
        self.groups = groups
    }

    /// Floats per sample of the input and output.
    package var inputCount: Int { inChannels * inHeight * inWidth }
    package var outputCount: Int { outChannels * outHeight * outWidth }
    package var outPixels: Int { outHeight * outWidth }
    package var inChannelsPerGroup: Int { inChannels / groups }
    package var outChannelsPerGroup: Int { outChannels / groups }
    /// Rows of the im2col matrix of one group (the GEMM's inner dimension).
    package var patchCount: Int { inChannelsPerGroup * kernelHeight * kernelWidth }
    /// Weights of a convolution: `[outChannels, inChannels / groups, kernelHeight, kernelWidth]`.
    package var weightCount: Int { outChannels * patchCount }

    /// A 1x1, stride-1, unpadded convolution reads its input as the im2col matrix itself.
    package var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideHeight == 1 && strideWidth == 1
            && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
            && outHeight == inHeight && outWidth == inWidth
    }

    /// The input row of kernel row `i` for output row `oh` (may be outside `0..<inHeight`).
    @inline(__always) package func inRow(_ oh: Int, _ i: Int) -> Int { oh * strideHeight - padTop + i * dilationHeight }
    @inline(__always) package func inColumn(_ ow: Int, _ j: Int) -> Int { ow * strideWidth - padLeft + j * dilationWidth }

    /// The indices `lo..<hi` of `0..<count` whose position `base + q * step` lies in `0..<size`
    /// (the kernel taps inside the input, or the output columns a tap reaches).
    @inline(__always)
    package static func taps(base: Int, step: Int, size: Int, count: Int) -> (Int, Int) {
        let lo = base >= 0 ? 0 : (-base + step - 1) / step
        let last = size - 1 - base
        let hi = last < 0 ? 0 : last / step + 1
        let l = min(lo, count), u = min(max(hi, l), count)
        return (l, u)
    }

    /// Every field in range, so that no kernel can index outside its buffers. Returns the broken
    /// rule, or nil.
    package func validate() -> String? {
        let dims = [inChannels, inHeight, inWidth, outChannels, outHeight, outWidth, kernelHeight, kernelWidth]
        if dims.contains(where: { $0 <= 0 }) { return "every size must be > 0 (\(self))" }
        if [strideHeight, strideWidth, dilationHeight, dilationWidth, groups].contains(where: { $0 <= 0 }) {
            return "strides, dilations and groups must be > 0 (\(self))"
        }
        if [padTop, padLeft, padBottom, padRight].contains(where: { $0 < 0 }) { return "pads must be >= 0 (\(self))" }
        if inChannels % groups != 0 || outChannels % groups != 0 {
            return "groups \(groups) must divide the input channels \(inChannels) and output channels \(outChannels)"
        }
        return nil
    }

    package var description: String {
        "\(inChannels)x\(inHeight)x\(inWidth) -> \(outChannels)x\(outHeight)x\(outWidth), kernel \(kernelHeight)x\(kernelWidth), "
            + "stride \(strideHeight)x\(strideWidth), dilation \(dilationHeight)x\(dilationWidth), "
            + "pads [\(padTop), \(padLeft), \(padBottom), \(padRight)], groups \(groups)"
    }
}
