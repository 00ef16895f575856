/// Direct convolution (stride 1, dilation 1, one group, any kernel size and padding) for few
/// input channels, where im2col + GEMM spends most of its time copying and packing (the first
/// layer of an RGB network: 3 channels, K = 27 taps) and Winograd's transforms cost more than
/// its products save.
///
/// Each step computes 6 neighbouring output pixels of a row for 16 output channels in twelve
/// FMA accumulators: for every tap (c, i, j), six broadcasts of input pixels and two vector
/// loads of the tap's weights for the 16 channels (prepared at load as `[c][i][j][k]`). The
/// input is first copied into zero-padded planes, so no tap needs a bounds check. Bias and the
/// fused activation are applied in registers; an 8x8 transpose then writes each channel's six
/// pixels to its NCHW plane.
///
/// Numerical contract (rounding, not bit for bit): each output is a float32 FMA chain over the taps
/// in (c, i, j) order, as im2col + GEMM rounds a float32 sum of the same products in its own
/// order.
package struct DirectConv: Sendable {
    package let inChannels: Int
    package let outChannels: Int
    package let inHeight: Int
    package let inWidth: Int
    package let outHeight: Int
    package let outWidth: Int
    package let kernelHeight: Int
    package let kernelWidth: Int
    package let padTop: Int
    package let padLeft: Int
    /// Output channels rounded up to 16.
    let kPad: Int
    /// The padded input planes: every tap of every step lies inside (output rows rounded up to
    /// the step's 6 pixels).
    let xpHeight: Int
    let xpWidth: Int

    /// Output pixel (oh, ow) reads input pixel (oh - padTop + i, ow - padLeft + j) for tap (i, j).
    package init(
        inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
        kernelHeight: Int, kernelWidth: Int, padTop: Int, padLeft: Int
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.padTop = padTop
        self.padLeft = padLeft
        kPad = (outChannels + 15) / 16 * 16
        xpHeight = outHeight + kernelHeight - 1
        xpWidth = (outWidth + 5) / 6 * 6 + kernelWidth - 1
    }

    /// Floats of prepared weights (`prepareWeights`).
    package var weightCount: Int { inChannels * kernelHeight * kernelWidth * kPad }

    /// Floats of scratch `run` needs (the padded planes of one sample).
    package var scratchCount: Int { inChannels * xpHeight * xpWidth }

    /// u[(c, i, j)][k] = w[k][c][i][j] for weights `[K, C, kh, kw]`; channels past K are zero.
    package func prepareWeights(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        u.initialize(repeating: 0, count: weightCount)
        let taps = inChannels * kernelHeight * kernelWidth
        for k in 0..<outChannels {
            for t in 0..<taps { u[t * kPad + k] = w[k * taps + t] }
        }
    }

    /// y = f(conv(x) + bias) for `batch` NCHW samples, with `u` from `prepareWeights`.
    package func run(
        batch: Int, x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        activation: FusedActivation, y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let xp = scratch
        let xpPlane = xpHeight &* xpWidth, inPlane = inHeight &* inWidth, outPlane = outHeight &* outWidth
        // The padding is never written below: zero it once per call.
        xp.update(repeating: 0, count: inChannels &* xpPlane)
        let h0 = max(0, -padTop), h1 = min(inHeight, xpHeight &- padTop)
        let w0 = max(0, -padLeft), w1 = min(inWidth, xpWidth &- padLeft)
        for n in 0..<batch {
            let xs = x + n &* inChannels &* inPlane
            if h1 > h0 && w1 > w0 {
                for c in 0..<inChannels {
                    for h in h0..<h1 {
                        (xp + (c &* xpPlane &+ (h &+ padTop) &* xpWidth &+ w0 &+ padLeft))
                            .update(from: xs + (c &* inPlane &+ h &* inWidth &+ w0), count: w1 &- w0)
                    }
                }
            }
            let ys = y + n &* outChannels &* outPlane
            var k0 = 0
            while k0 < outChannels {
                var b0 = SIMD8<Float>(), b1 = SIMD8<Float>()
                if let bias {
                    for l in 0..<min(8, outChannels &- k0) { b0[l] = bias[k0 &+ l] }
                    for l in 0..<max(0, min(8, outChannels &- k0 &- 8)) { b1[l] = bias[k0 &+ 8 &+ l] }
                }
                for oh in 0..<outHeight {
                    var ow = 0
                    while ow < outWidth {
                        step(
                            xp + (oh &* xpWidth &+ ow), u + k0, bias: (b0, b1), activation,
                            y: ys + (k0 &* outPlane &+ oh &* outWidth &+ ow), count: min(6, outWidth &- ow),
                            channels: min(16, outChannels &- k0), outPlane: outPlane)
                        ow &+= 6
                    }
                }
                k0 &+= 16
            }
        }
    }

    /// Six pixels (from `origin`, the padded input at tap (0, 0) of the first pixel) for 16
    /// output channels (weights from `u`), the first `count` pixels and `channels` channels stored.
    @inline(__always)
    private func step(
        _ origin: UnsafePointer<Float>, _ u: UnsafePointer<Float>, bias: (SIMD8<Float>, SIMD8<Float>),
        _ activation: FusedActivation, y: UnsafeMutablePointer<Float>, count: Int, channels: Int, outPlane: Int
    ) {
        var a00 = bias.0, a01 = bias.1, a10 = bias.0, a11 = bias.1, a20 = bias.0, a21 = bias.1
        var a30 = bias.0, a31 = bias.1, a40 = bias.0, a41 = bias.1, a50 = bias.0, a51 = bias.1
        var up = u
        let xpPlane = xpHeight &* xpWidth
        for c in 0..<inChannels {
            for i in 0..<kernelHeight {
                let row = origin + (c &* xpPlane &+ i &* xpWidth)
                for j in 0..<kernelWidth {
                    let p = row + j
                    let u0 = load(up), u1 = load(up + 8)
                    var b = SIMD8<Float>(repeating: p[0])
                    a00 = a00.addingProduct(b, u0); a01 = a01.addingProduct(b, u1)
                    b = SIMD8<Float>(repeating: p[1])
                    a10 = a10.addingProduct(b, u0); a11 = a11.addingProduct(b, u1)
                    b = SIMD8<Float>(repeating: p[2])
                    a20 = a20.addingProduct(b, u0); a21 = a21.addingProduct(b, u1)
                    b = SIMD8<Float>(repeating: p[3])
                    a30 = a30.addingProduct(b, u0); a31 = a31.addingProduct(b, u1)
                    b = SIMD8<Float>(repeating: p[4])
                    a40 = a40.addingProduct(b, u0); a41 = a41.addingProduct(b, u1)
                    b = SIMD8<Float>(repeating: p[5])
                    a50 = a50.addingProduct(b, u0); a51 = a51.addingProduct(b, u1)
                    up += kPad
                }
            }
        }
        // Activation in memory (one branch for all twelve vectors), then an 8x8 transpose per
        // group of 8 channels (pixels 6 and 7 are padding).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 128) { buffer in
            let t = buffer.baseAddress!
            save(a00, t); save(a10, t + 8); save(a20, t + 16); save(a30, t + 24); save(a40, t + 32); save(a50, t + 40)
            save(a01, t + 64); save(a11, t + 72); save(a21, t + 80); save(a31, t + 88); save(a41, t + 96); save(a51, t + 104)
            activation.apply(t, count: 6, bias: SIMD8<Float>())
            activation.apply(t + 64, count: 6, bias: SIMD8<Float>())
            let zero = SIMD8<Float>()
            var r: Vectors8 = (load(t), load(t + 8), load(t + 16), load(t + 24), load(t + 32), load(t + 40), zero, zero)
            transpose(&r)
            store(r, count: count, channels: min(8, channels), y, outPlane)
            guard channels > 8 else { return }
            r = (load(t + 64), load(t + 72), load(t + 80), load(t + 88), load(t + 96), load(t + 104), zero, zero)
            transpose(&r)
            store(r, count: count, channels: channels &- 8, y + 8 &* outPlane, outPlane)
        }
    }

    /// The first `count` lanes of channel l's vector to `y + l * outPlane`, for l < `channels`.
    @inline(__always)
    private func store(_ r: Vectors8, count: Int, channels: Int, _ y: UnsafeMutablePointer<Float>, _ outPlane: Int) {
        @inline(__always)
        func put(_ v: SIMD8<Float>, _ l: Int) {
            let p = y + l &* outPlane
            if count == 6 {
                UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
                p[4] = v[4]
                p[5] = v[5]
            } else {
                for q in 0..<count { p[q] = v[q] }
            }
        }
        put(r.0, 0)
        if channels > 1 { put(r.1, 1) }
        if channels > 2 { put(r.2, 2) }
        if channels > 3 { put(r.3, 3) }
        if channels > 4 { put(r.4, 4) }
        if channels > 5 { put(r.5, 5) }
        if channels > 6 { put(r.6, 6) }
        if channels > 7 { put(r.7, 7) }
    }
}
