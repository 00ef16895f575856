import Foundation
import Testing
import VigilEngine
import VigilTesting

/// Corrupt, truncated and foreign image files are refused with the file's name and libpng's or
/// libjpeg's reason, never a crash: the C libraries' error hooks stay inside C
/// (Sources/CPNG/shim.h, Sources/CJPEG/shim.h), and libjpeg's "premature end" warning is an error.
struct MalformedImageTests {
    static let png = Fixtures.url("cnn/deep_resnet/images").appendingPathComponent(
        try! FileManager.default.contentsOfDirectory(atPath: Fixtures.url("cnn/deep_resnet/images").path).sorted().first { $0.hasSuffix(".png") }!)
    static let jpeg = Fixtures.url("cnn/images/large_56x56.jpg")

    func decode(_ data: Data, _ name: String) throws -> DecodedImage { try ImageDecoder.decode(data, name: name) }

    @Test func validFilesDecodeToEightBitRGB() throws {
        let p = try decode(try Data(contentsOf: Self.png), "a.png")
        #expect((p.width, p.height, p.channels, p.format) == (28, 28, 3, .png))
        let j = try decode(try Data(contentsOf: Self.jpeg), "a.jpg")
        #expect((j.width, j.height, j.channels, j.format) == (56, 56, 3, .jpeg))
        let g = try decode(try Data(contentsOf: Fixtures.url("cnn/images/gray_28x28.png")), "g.png")
        #expect(g.channels == 1)
        let a = try decode(try Data(contentsOf: Fixtures.url("cnn/images/rgba_28x28.png")), "rgba.png")
        #expect(a.channels == 3 && a.droppedAlpha)
    }

    /// Each unusual file decodes to the same 8-bit pixels as Pillow's `convert("RGB")` (or
    /// `"L"`): grayscale, palette, alpha dropped, 16-bit samples' high byte, and a JPEG through
    /// libjpeg-turbo's default IDCT and upsampling.
    @Test func pixelsEqualPillows() throws {
        let table = try FixtureTable(contentsOf: Fixtures.url("cnn/images/pixels.csv"))
        #expect(table.rows.count == 5)
        for row in table.rows {
            let image = try decode(try Data(contentsOf: Fixtures.url("cnn/images/\(row[0])")), row[0])
            #expect(image.channels == (row[1] == "L" ? 1 : 3), "\(row[0])")
            #expect(SHA256Digest.hex(of: Data(image.pixels)) == row[2], "\(row[0]): pixels differ from Pillow's")
        }
    }

    @Test func everyTruncationOfAPNGOrJPEGIsRefused() throws {
        for url in [Self.png, Self.jpeg] {
            let data = try Data(contentsOf: url)
            // Every cut short of the end must fail (a JPEG cut inside its last marker included).
            for cut in stride(from: 0, to: data.count - 2, by: max(1, data.count / 61)) {
                let error = #expect(throws: VigilError.self, "\(url.lastPathComponent) cut at \(cut)") {
                    _ = try decode(data.prefix(cut), "cut.\(url.pathExtension)")
                }
                #expect(error?.kind == .input)
                #expect(error?.message.hasPrefix("cut.") == true)
            }
        }
    }

    @Test func aCorruptPNGChunkIsRefusedWithLibpngsReason() throws {
        var data = try Data(contentsOf: Self.png)
        // Flip a byte inside the first IDAT chunk's data: its CRC no longer matches.
        let idat = try #require(data.range(of: Data("IDAT".utf8)))
        data[idat.upperBound + 4] ^= 0xFF
        let error = #expect(throws: VigilError.self) { _ = try decode(data, "bad.png") }
        #expect(error?.message.contains("bad.png: cannot decode the PNG image") == true)
        #expect(error?.message.contains("IDAT") == true, "\(error?.message ?? "")")
        // A wrong checksum on the header chunk (bytes 29-32: IHDR's CRC).
        var header = try Data(contentsOf: Self.png)
        header[30] ^= 0x01
        let crc = #expect(throws: VigilError.self) { _ = try decode(header, "crc.png") }
        #expect(crc?.message.contains("CRC") == true, "\(crc?.message ?? "")")
    }

    @Test func aTruncatedJPEGSaysSo() throws {
        let data = try Data(contentsOf: Self.jpeg)
        let error = #expect(throws: VigilError.self) { _ = try decode(data.prefix(data.count * 2 / 3), "half.jpg") }
        #expect(error?.message.contains("Premature end of JPEG file") == true, "\(error?.message ?? "")")
    }

    @Test func garbageAfterAValidSignatureIsRefused() throws {
        var g = SystemRandomNumberGenerator()
        for header in [[UInt8]([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), [0xFF, 0xD8, 0xFF]] {
            for _ in 0..<50 {
                let junk = Data(header + (0..<Int.random(in: 0..<400, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) })
                #expect(throws: VigilError.self) { _ = try decode(junk, "junk") }
            }
        }
    }

    @Test func notAnImageAndAnEmptyFileAreRefused() {
        let e1 = #expect(throws: VigilError.self) { _ = try decode(Data("id,image\n".utf8), "x.png") }
        #expect(e1?.message.contains("not a PNG or JPEG") == true)
        let e2 = #expect(throws: VigilError.self) { _ = try decode(Data(), "empty.png") }
        #expect(e2?.message.contains("empty") == true)
    }

    @Test func aMissingOrCorruptFileInACohortStopsTheRunNamingIt() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var bytes = try Data(contentsOf: Self.png)
        bytes = bytes.prefix(bytes.count / 2)
        try bytes.write(to: dir.file("half.png"))
        try FileManager.default.copyItem(at: Self.png, to: dir.file("good.png"))
        let model = try VigilModel.load(path: Fixtures.url("cnn/deep_resnet").path)
        try dir.write("missing.csv", "id,image\n1,good.png\n2,nowhere.png\n")
        let e1 = #expect(throws: VigilError.self) { _ = try ImageCohortReader(url: dir.file("missing.csv"), model: model).nextBatch() }
        #expect(e1?.message.contains("line 3") == true && e1?.message.contains("nowhere.png") == true)
        let e2 = #expect(throws: VigilError.self) { _ = try ImageCohortReader(url: dir.url, model: model).nextBatch() }
        #expect(e2?.message.contains("half.png") == true)
    }
}
