/// 3x3 convolution (stride 1, dilation 1, one group, any padding) by Winograd's minimal filtering
/// algorithm F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
/// 2016): each 4x4 block of output pixels ("tile") of output channel k is
///
///     Y = Aᵀ [ Σ_c (G g_kc Gᵀ) ⊙ (Bᵀ d_c B) ] A
///
/// where d_c is the tile's 6x6 input window in channel c and g_kc the 3x3 kernel: 36 products
/// per tile and channel pair where direct convolution needs 144 (2.25 per output pixel instead of
/// 9). The sum over c becomes 36 independent GEMMs (one per entry ξ of the transformed tile),
/// `[tiles x C]` by `[C x K]`, which is where most of the time goes.
///
/// This module is compiled for AVX2 + FMA (Package.swift: `-target-cpu haswell` on x86-64), so
/// `addingProduct` on `SIMD8<Float>` is one `vfmadd` instruction; callers must check the CPU first
/// (`VigilKernels.CPU.supportsAVX2Kernels`). Channels are the vector lanes throughout, so any
/// number of tiles works without wasted lanes:
///
/// 1. each sample is copied into a zero-padded, channels-last buffer (`xp[row][col][c]`, C rounded
///    up to 8), so every tile reads its window without bounds checks;
/// 2. input transform: `V[ξ][tile][c] = (Bᵀ d B)[ξ]`, 8 channels at a time;
/// 3. per ξ, `M[ξ][tile][k] = Σ_c V[ξ][tile][c] · U[ξ][c][k]` with a 6-tile x 16-channel
///    register-blocked FMA kernel (`U` = the transformed weights, prepared once at load);
/// 4. output transform `Aᵀ m A` plus bias and the fused activation, 8 output channels at a time,
///    transposed in registers and written to the NCHW output.
///
/// Small feature maps have few tiles per sample, so several samples share one pass (their tiles
/// stacked in V and M) as long as V and M stay within `passFloats`, in L2.
///
/// Numerical contract (rounding, not bit for bit): the weights are transformed in `Double` and
/// rounded once; the transforms and the channel sums run in float32 (the sum over c in FMA order).
/// The result differs from direct convolution by rounding only, amplified by the transforms'
/// constants (up to 5 in Bᵀ and 8 in Aᵀ): on the retinopathy model's layers about 1e-6 of the
/// largest output (Tests/VigilKernelsTests/WinogradTests.swift bounds it against the reference).
package struct Winograd: Sendable {
    package let inChannels: Int
    package let outChannels: Int
    package let inHeight: Int
    package let inWidth: Int
    package let outHeight: Int
    package let outWidth: Int
    package let padTop: Int
    package let padLeft: Int
    /// Channels rounded up to the vector width (input) and to the kernel's 16 (output).
    let cPad: Int
    let kPad: Int
    let tilesY: Int
    let tilesX: Int
    /// Tiles of one sample.
    let tiles: Int
    /// Samples per pass, and the rows of V and M (their tiles, rounded up to the kernel's 6).
    let samplesPerPass: Int
    let tileRows: Int
    let xpHeight: Int
    let xpWidth: Int

    /// Floats of V and M that one pass may use (512 KiB). Measured on the retinopathy model
    /// (batch 64, chunks of 32 samples): 64k, 128k, 256k and 512k floats took 92.5, 90, 101.7
    /// and 110 µs of CPU per image (fewer, fuller passes against V and M leaving L2).
    static let passFloats = 131_072

    /// Output pixel (oh, ow) reads input pixel (oh - padTop + i, ow - padLeft + j) for tap (i, j).
    package init(
        inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int,
        padTop: Int, padLeft: Int
    ) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.padTop = padTop
        self.padLeft = padLeft
        cPad = (inChannels + 7) / 8 * 8
        kPad = (outChannels + 15) / 16 * 16
        tilesY = (outHeight + 3) / 4
        tilesX = (outWidth + 3) / 4
        tiles = tilesY * tilesX
        let perSample = 36 * tiles * (cPad + kPad)
        samplesPerPass = max(1, Self.passFloats / max(1, perSample))
        tileRows = (samplesPerPass * tiles + 5) / 6 * 6
        xpHeight = 4 * tilesY + 2
        xpWidth = 4 * tilesX + 2
    }

    /// Floats of transformed weights (`transformWeights`).
    package var weightCount: Int { 36 * cPad * kPad }

    /// Floats of scratch `run` needs for any batch (samples go `samplesPerPass` at a time).
    package var scratchCount: Int { xpHeight * xpWidth * cPad + 36 * tileRows * (cPad + kPad) + 2 * 36 * 8 }

    /// U[ξ][c][k] = (G g Gᵀ)[ξ] for weights `[K, C, 3, 3]`, computed in `Double` and rounded
    /// once; the padding channels are zero.
    package func transformWeights(_ w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        // G, 6 x 3.
        let sixth = 1.0 / 6, twelfth = 1.0 / 12, twentyFourth = 1.0 / 24
        let gm: [[Double]] = [
            [0.25, 0, 0], [-sixth, -sixth, -sixth], [-sixth, sixth, -sixth],
            [twentyFourth, twelfth, sixth], [twentyFourth, -twelfth, sixth], [0, 0, 1],
        ]
        u.initialize(repeating: 0, count: weightCount)
        var t = [Double](repeating: 0, count: 18)
        for k in 0..<outChannels {
            for c in 0..<inChannels {
                let g = w + (k * inChannels + c) * 9
                for i in 0..<6 {
                    for j in 0..<3 {
                        t[i * 3 + j] = gm[i][0] * Double(g[j]) + gm[i][1] * Double(g[3 + j]) + gm[i][2] * Double(g[6 + j])
                    }
                }
                for i in 0..<6 {
                    for j in 0..<6 {
                        let v = t[i * 3] * gm[j][0] + t[i * 3 + 1] * gm[j][1] + t[i * 3 + 2] * gm[j][2]
                        u[((i * 6 + j) * cPad + c) * kPad + k] = Float(v)
                    }
                }
            }
        }
    }

    /// y = f(conv(x) + bias) for `batch` NCHW samples, with `u` from `transformWeights`.
    package func run(
        batch: Int, x: UnsafePointer<Float>, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        activation: FusedActivation, y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let xp = scratch
        let v = xp + xpHeight * xpWidth * cPad
        let mm = v + 36 * tileRows * cPad
        let tmp = mm + 36 * tileRows * kPad
        let inCount = inChannels * inHeight * inWidth, outCount = outChannels * outHeight * outWidth
        // The padding of xp is never written below: zero it once per call.
        xp.update(repeating: 0, count: xpHeight * xpWidth * cPad)
        var first = 0
        while first < batch {
            let count = min(samplesPerPass, batch - first)
            let rows = (count * tiles + 5) / 6 * 6
            // Rows past the last tile only feed ignored rows of M; keep them finite.
            for xi in 0..<36 {
                (v + (xi * tileRows + count * tiles) * cPad).update(repeating: 0, count: (rows - count * tiles) * cPad)
            }
            for s in 0..<count {
                pad(x + (first + s) * inCount, into: xp)
                inputTransform(xp, into: v, firstTile: s * tiles, tmp: tmp)
            }
            multiply(v, u, rows: rows, into: mm)
            for s in 0..<count {
                outputTransform(
                    mm, firstTile: s * tiles, bias: bias, activation: activation, into: y + (first + s) * outCount, tmp: tmp)
            }
            first += count
        }
    }

    /// xp[r][col][c] = x[c][r - padTop][col - padLeft] inside the input (the rest stays zero).
    /// Eight channels and eight consecutive pixels (across rows) at a time are transposed in
    /// registers, each pixel's vector then stored at its place in xp.
    private func pad(_ x: UnsafePointer<Float>, into xp: UnsafeMutablePointer<Float>) {
        let plane = inHeight &* inWidth, cp = cPad
        let h0 = max(0, -padTop), h1 = min(inHeight, xpHeight &- padTop)
        let w0 = max(0, -padLeft), w1 = min(inWidth, xpWidth &- padLeft)
        guard h1 > h0, w1 > w0 else { return }
        // Every input pixel has a place in xp (the usual case: padding ≥ 0 on the top and left).
        let whole = h0 == 0 && w0 == 0 && h1 == inHeight && w1 == inWidth
        var c = 0
        while c < inChannels {
            let lanes = min(8, inChannels &- c)
            let src = x + c &* plane
            if lanes == 8 && whole {
                // (h, w) of pixel p, stepped along instead of divided.
                var p = 0, h = 0, w = 0
                @inline(__always)
                func put(_ v: SIMD8<Float>) {
                    save(v, xp + (((h &+ padTop) &* xpWidth &+ w &+ padLeft) &* cp &+ c))
                    w &+= 1
                    if w == inWidth { w = 0; h &+= 1 }
                }
                while p &+ 8 <= plane {
                    var r = (
                        load(src + p), load(src + (plane &+ p)), load(src + (2 &* plane &+ p)), load(src + (3 &* plane &+ p)),
                        load(src + (4 &* plane &+ p)), load(src + (5 &* plane &+ p)), load(src + (6 &* plane &+ p)),
                        load(src + (7 &* plane &+ p)))
                    transpose(&r)
                    put(r.0); put(r.1); put(r.2); put(r.3); put(r.4); put(r.5); put(r.6); put(r.7)
                    p &+= 8
                }
                while p < plane {
                    var v = SIMD8<Float>()
                    for l in 0..<8 { v[l] = src[l &* plane &+ p] }
                    put(v)
                    p &+= 1
                }
            } else {
                for h in h0..<h1 {
                    var dst = xp + (((h &+ padTop) &* xpWidth &+ w0 &+ padLeft) &* cp &+ c)
                    var at = src + (h &* inWidth &+ w0)
                    for _ in w0..<w1 {
                        for l in 0..<lanes { dst[l] = at[l &* plane] }
                        dst += cp
                        at += 1
                    }
                }
            }
            c &+= 8
        }
    }

    /// V[ξ][firstTile + t][c] = (Bᵀ d B)[ξ] for the tiles of one sample: columns of the window
    /// into `tmp` (6 x 6 vectors), then rows of `tmp` into V.
    private func inputTransform(
        _ xp: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>, firstTile: Int, tmp: UnsafeMutablePointer<Float>
    ) {
        let cp = cPad, rowStride = xpWidth &* cp, xiStride = tileRows &* cp
        for ty in 0..<tilesY {
            for tx in 0..<tilesX {
                let window = xp + (4 &* ty &* xpWidth &+ 4 &* tx) &* cp
                let out = v + (firstTile &+ ty &* tilesX &+ tx) &* cp
                var cv = 0
                while cv < cp {
                    for j in 0..<6 { inputLine(window + (j &* cp &+ cv), rowStride, tmp + j &* 8, 48) }
                    for i in 0..<6 { inputLine(UnsafePointer(tmp + i &* 48), 8, out + (i &* 6 &* xiStride &+ cv), xiStride) }
                    cv &+= 8
                }
            }
        }
    }

    /// One line (6 vectors, `stride` floats apart) times Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
    /// 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1], into `dst` (`dstStride` apart).
    @inline(__always)
    private func inputLine(_ src: UnsafePointer<Float>, _ stride: Int, _ dst: UnsafeMutablePointer<Float>, _ dstStride: Int) {
        let d0 = load(src), d1 = load(src + stride), d2 = load(src + 2 &* stride)
        let d3 = load(src + 3 &* stride), d4 = load(src + 4 &* stride), d5 = load(src + 5 &* stride)
        let four = SIMD8<Float>(repeating: 4), five = SIMD8<Float>(repeating: 5), two = SIMD8<Float>(repeating: 2)
        let p = d4 - d2 * four      // -4 d2 + d4
        let q = d3 - d1 * four      // -4 d1 + d3
        let r = d4 - d2             // -d2 + d4
        let s = (d3 - d1) * two     // -2 d1 + 2 d3
        save(d0 * four - d2 * five + d4, dst)
        save(p + q, dst + dstStride)
        save(p - q, dst + 2 &* dstStride)
        save(r + s, dst + 3 &* dstStride)
        save(r - s, dst + 4 &* dstStride)
        save(d1 * four - d3 * five + d5, dst + 5 &* dstStride)
    }

    /// M[ξ] = V[ξ] · U[ξ] for every ξ, in blocks of 6 tiles x 16 output channels.
    private func multiply(_ v: UnsafePointer<Float>, _ u: UnsafePointer<Float>, rows: Int, into m: UnsafeMutablePointer<Float>) {
        for xi in 0..<36 {
            let vx = v + xi &* tileRows &* cPad
            let ux = u + xi &* cPad &* kPad
            let mx = m + xi &* tileRows &* kPad
            var k0 = 0
            while k0 < kPad {
                var t0 = 0
                while t0 < rows {
                    Self.kernel6x16(
                        v: vx + t0 &* cPad, ldv: cPad, u: ux + k0, ldu: kPad, depth: inChannels,
                        m: mx + (t0 &* kPad &+ k0), ldm: kPad)
                    t0 &+= 6
                }
                k0 &+= 16
            }
        }
    }

    /// m[r][0..<16] = Σ_{c < depth} v[r * ldv + c] · u[c * ldu + 0..<16] for r in 0..<6: twelve
    /// accumulators, two vector loads and six broadcasts per step of c.
    @inline(__always)
    private static func kernel6x16(
        v: UnsafePointer<Float>, ldv: Int, u: UnsafePointer<Float>, ldu: Int, depth: Int,
        m: UnsafeMutablePointer<Float>, ldm: Int
    ) {
        var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
        var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
        var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
        var vp = v, up = u
        for _ in 0..<depth {
            let u0 = load(up), u1 = load(up + 8)
            var b = SIMD8<Float>(repeating: vp[0])
            a00 = a00.addingProduct(b, u0); a01 = a01.addingProduct(b, u1)
            b = SIMD8<Float>(repeating: vp[ldv])
            a10 = a10.addingProduct(b, u0); a11 = a11.addingProduct(b, u1)
            b = SIMD8<Float>(repeating: vp[2 &* ldv])
            a20 = a20.addingProduct(b, u0); a21 = a21.addingProduct(b, u1)
            b = SIMD8<Float>(repeating: vp[3 &* ldv])
            a30 = a30.addingProduct(b, u0); a31 = a31.addingProduct(b, u1)
            b = SIMD8<Float>(repeating: vp[4 &* ldv])
            a40 = a40.addingProduct(b, u0); a41 = a41.addingProduct(b, u1)
            b = SIMD8<Float>(repeating: vp[5 &* ldv])
            a50 = a50.addingProduct(b, u0); a51 = a51.addingProduct(b, u1)
            vp += 1
            up += ldu
        }
        save(a00, m); save(a01, m + 8)
        save(a10, m + ldm); save(a11, m + (ldm &+ 8))
        save(a20, m + 2 &* ldm); save(a21, m + (2 &* ldm &+ 8))
        save(a30, m + 3 &* ldm); save(a31, m + (3 &* ldm &+ 8))
        save(a40, m + 4 &* ldm); save(a41, m + (4 &* ldm &+ 8))
        save(a50, m + 5 &* ldm); save(a51, m + (5 &* ldm &+ 8))
    }

    /// y = f(Aᵀ M A + bias) for the tiles of one sample, 8 output channels at a time: columns of
    /// M into `tmp` (4 x 6 vectors), rows of that into `tmp + 288` (4 x 4), then bias and
    /// activation, and the channels transposed out to their NCHW planes. Where the output's side
    /// is not a multiple of 4, the tile's last rows or columns are dropped.
    private func outputTransform(
        _ mm: UnsafePointer<Float>, firstTile: Int, bias: UnsafePointer<Float>?, activation: FusedActivation,
        into y: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>
    ) {
        let xiStride = tileRows &* kPad, outPlane = outHeight &* outWidth, width = outWidth
        let res = tmp + 288
        var k0 = 0
        while k0 < outChannels {
            let lanes = min(8, outChannels &- k0)
            var b = SIMD8<Float>()
            if let bias { for l in 0..<lanes { b[l] = bias[k0 &+ l] } }
            for ty in 0..<tilesY {
                for tx in 0..<tilesX {
                    let p = mm + ((firstTile &+ ty &* tilesX &+ tx) &* kPad &+ k0)
                    for j in 0..<6 { outputLine(p + j &* xiStride, 6 &* xiStride, tmp + j &* 8, 48) }
                    for i in 0..<4 { outputLine(UnsafePointer(tmp + i &* 48), 8, res + i &* 32, 8) }
                    activation.apply(res, count: 16, bias: b)
                    let oy = 4 &* ty, ox = 4 &* tx
                    let rows = min(4, outHeight &- oy), cols = min(4, outWidth &- ox)
                    let plane = y + (k0 &* outPlane &+ oy &* width &+ ox)
                    var r = (
                        load(res), load(res + 8), load(res + 16), load(res + 24),
                        load(res + 32), load(res + 40), load(res + 48), load(res + 56))
                    transpose(&r)
                    storeRows(r, lanes: lanes, rows: rows, cols: cols, plane, outPlane, width)
                    guard rows > 2 else { continue }
                    r = (
                        load(res + 64), load(res + 72), load(res + 80), load(res + 88),
                        load(res + 96), load(res + 104), load(res + 112), load(res + 120))
                    transpose(&r)
                    storeRows(r, lanes: lanes, rows: rows &- 2, cols: cols, plane + 2 &* width, outPlane, width)
                }
            }
            k0 &+= 8
        }
    }

    /// One line (6 vectors, `stride` floats apart) times Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0;
    /// 0 1 1 4 4 0; 0 1 -1 8 -8 1], into `dst` (4 vectors `dstStride` apart).
    @inline(__always)
    private func outputLine(_ src: UnsafePointer<Float>, _ stride: Int, _ dst: UnsafeMutablePointer<Float>, _ dstStride: Int) {
        let q0 = load(src), q1 = load(src + stride), q2 = load(src + 2 &* stride)
        let q3 = load(src + 3 &* stride), q4 = load(src + 4 &* stride), q5 = load(src + 5 &* stride)
        let sa = q1 + q2, da = q1 - q2, sb = q3 + q4, db = q3 - q4
        let two = SIMD8<Float>(repeating: 2), four = SIMD8<Float>(repeating: 4), eight = SIMD8<Float>(repeating: 8)
        save(q0 + sa + sb, dst)
        save(da + db * two, dst + dstStride)
        save(sa + sb * four, dst + 2 &* dstStride)
        save(da + db * eight + q5, dst + 3 &* dstStride)
    }

}

/// Channel l's vector of a transposed tile half (two rows of 4 pixels) to `plane + l * planeStride`
/// and one `width` below, for the first `lanes` channels, the first `rows` rows (1 or more) and
/// the first `cols` columns.
@inline(__always)
private func storeRows(
    _ r: Vectors8, lanes: Int, rows: Int, cols: Int, _ plane: UnsafeMutablePointer<Float>, _ planeStride: Int, _ width: Int
) {
    @inline(__always)
    func put(_ v: SIMD8<Float>, _ l: Int) {
        let p = plane + l &* planeStride
        if cols == 4 {
            UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
            if rows > 1 { UnsafeMutableRawPointer(p + width).storeBytes(of: v.highHalf, as: SIMD4<Float>.self) }
        } else {
            for j in 0..<cols { p[j] = v[j] }
            if rows > 1 { for j in 0..<cols { p[width &+ j] = v[4 &+ j] } }
        }
    }
    put(r.0, 0)
    if lanes > 1 { put(r.1, 1) }
    if lanes > 2 { put(r.2, 2) }
    if lanes > 3 { put(r.3, 3) }
    if lanes > 4 { put(r.4, 4) }
    if lanes > 5 { put(r.5, 5) }
    if lanes > 6 { put(r.6, 6) }
    if lanes > 7 { put(r.7, 7) }
}
