public import Foundation
internal import VigilKernels

/// The images to score for a CNN model, from one of:
/// - a folder: every `.png`, `.jpg` and `.jpeg` file in it (not recursive), in name order with
///   numbers compared by value (`2.png` before `10.png`); the id is the file name;
/// - a CSV file whose header has an `image` column of paths (relative to the CSV's folder, or
///   absolute); the id comes from the id column (`id_field`, else `id`) or is the file name,
///   and group fields come from their columns;
/// - a list: one image path per line (blank lines and `#` comments skipped); ids are file names.
///
/// Images are read, decoded (libpng, libjpeg-turbo) and preprocessed batch by batch, spread over
/// all cores, so memory stays flat. A file that is missing, corrupt, truncated or of the wrong
/// size (when the manifest forbids resizing) stops the run with an error naming it.
public final class ImageCohortReader {
    public struct Entry: Sendable {
        public let url: URL
        public let id: String
        /// One raw value per field group of the model (nil = missing).
        public let groupRaw: [String?]
        /// Where the entry came from, for messages (`cohort.csv: line 4`, or the path).
        public let origin: String
    }

    public let model: VigilModel
    public private(set) var entries: [Entry]
    /// Notes about the input (skipped files, a group field absent from the CSV).
    public private(set) var notes: [String] = []
    public private(set) var imagesRead = 0

    public var totalImages: Int { entries.count }

    public init(url: URL, model: VigilModel) throws {
        guard model.imageInput != nil else {
            throw VigilError(.usage, "\(model.name) is a tabular model; --input must be a CSV or JSON Lines cohort")
        }
        self.model = model
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw VigilError(.io, "\(url.path): no such file or folder")
        }
        var notes: [String] = []
        if isDir.boolValue {
            entries = try Self.folder(url, groups: model.fieldGroups.count, notes: &notes)
        } else {
            entries = try Self.listing(url, model: model, notes: &notes)
        }
        self.notes = notes
        guard !entries.isEmpty else { throw VigilError(.input, "\(url.path): no images to score") }
    }

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    private static func folder(_ url: URL, groups: Int, notes: inout [String]) throws -> [Entry] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw VigilError(.io, "\(url.path): cannot list the folder (\(error.localizedDescription))")
        }
        let images = names.filter { !$0.hasPrefix(".") && imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        let skipped = names.filter { !$0.hasPrefix(".") }.count - images.count
        if skipped > 0 { notes.append("\(url.path): skipped \(skipped) file(s) that are not .png, .jpg or .jpeg") }
        return images.map { name in
            let u = url.appendingPathComponent(name)
            return Entry(url: u, id: name, groupRaw: Array(repeating: nil, count: groups), origin: u.path)
        }
    }

    private static func listing(_ url: URL, model: VigilModel, notes: inout [String]) throws -> [Entry] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw VigilError(.io, "\(url.path): cannot read the file (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw VigilError(.input, "\(url.path): not UTF-8 text (expected a CSV with an 'image' column, or a list of image paths)")
        }
        let base = url.deletingLastPathComponent()
        func resolve(_ path: String) -> URL {
            path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
        }
        let records = csvRecords(text)
        let groupsCount = model.fieldGroups.count
        guard let first = records.first else { return [] }
        let header = try splitFields(first.text, origin: "\(url.path): line \(first.line)")
        guard header.contains("image") else {
            // A plain list of paths.
            var entries: [Entry] = []
            for r in records {
                let path = r.text.trimmingCharacters(in: .whitespaces)
                if path.isEmpty || path.hasPrefix("#") { continue }
                let u = resolve(path)
                entries.append(Entry(url: u, id: u.lastPathComponent, groupRaw: Array(repeating: nil, count: groupsCount), origin: "\(url.path): line \(r.line)"))
            }
            return entries
        }
        let imageColumn = header.firstIndex(of: "image")!
        let idColumn = header.firstIndex(of: model.idField)
        let groupColumns = model.fieldGroups.map { g in header.firstIndex(of: g.field) }
        for (g, c) in zip(model.fieldGroups, groupColumns) where c == nil {
            notes.append("group field '\(g.field)' (group '\(g.name)') is not in the input: every image gets '\(g.missingLabel)'")
        }
        var entries: [Entry] = []
        for r in records.dropFirst() where !r.text.trimmingCharacters(in: .whitespaces).isEmpty {
            let origin = "\(url.path): line \(r.line)"
            let fields = try splitFields(r.text, origin: origin)
            guard fields.count == header.count else {
                throw VigilError(.input, "\(origin): \(fields.count) fields but the header has \(header.count)")
            }
            let path = fields[imageColumn].trimmingCharacters(in: .whitespaces)
            guard !path.isEmpty else { throw VigilError.input(at: origin, field: "image", value: "", rule: "is empty; it must be an image path") }
            let u = resolve(path)
            let id = idColumn.map { fields[$0] } ?? u.lastPathComponent
            let raw = groupColumns.map { c -> String? in
                guard let c else { return nil }
                let v = fields[c]
                return MissingValues.isMissingToken(v) ? nil : v
            }
            entries.append(Entry(url: u, id: id, groupRaw: raw, origin: "\(origin) (\(path))"))
        }
        return entries
    }

    /// Records of a CSV text (a quoted field may hold a newline), with their first line numbers.
    private static func csvRecords(_ text: String) -> [(text: String, line: Int)] {
        var records: [(String, Int)] = []
        var current = ""
        var inQuotes = false
        var line = 1, start = 1
        for ch in text {
            if ch == "\"" { inQuotes.toggle() }
            if (ch == "\n" || ch == "\r\n") && !inQuotes {
                records.append((current.hasSuffix("\r") ? String(current.dropLast()) : current, start))
                current = ""
                line += 1
                start = line
                continue
            }
            if ch == "\n" || ch == "\r\n" { line += 1 }
            current.append(ch)
        }
        if !current.isEmpty { records.append((current, start)) }
        return records
    }

    private static func splitFields(_ record: String, origin: String) throws -> [String] {
        let bytes = Array(record.utf8)
        return try bytes.withUnsafeBufferPointer { buf in
            try CohortReader.splitCSV(buf, 0..<buf.count, at: origin).map { try CohortReader.text(buf, $0, at: origin) }
        }
    }

    /// The images a batch holds when `nextBatch(maxImages:)` is asked for `maxImages`: at most
    /// `maxBatchFloats` input values (the manifest's shape may be large).
    package func imagesPerBatch(_ maxImages: Int) -> Int {
        max(1, min(max(1, maxImages), Self.maxBatchFloats / max(1, model.imageInput?.count ?? 1)))
    }

    /// Keeps only `range` of the entries (`vigil score --shard`), before any batch is read.
    package func restrict(to range: Range<Int>) {
        entries = Array(entries[range.clamped(to: entries.indices)])
    }

    /// Most input values (floats) one batch of preprocessed images holds (1 GiB).
    static let maxBatchFloats = 1 << 28

    /// The next batch of at most `maxImages` images, decoded and preprocessed, or nil at the end.
    public func nextBatch(maxImages: Int = 256) throws -> ImageBatch? {
        guard imagesRead < entries.count else { return nil }
        guard let spec = model.imageInput else {
            throw VigilError(.usage, "model '\(model.name)' does not take images")
        }
        // A batch holds at most maxBatchFloats input values (the manifest's shape may be large).
        let perBatch = imagesPerBatch(maxImages)
        let slice = Array(entries[imagesRead..<min(entries.count, imagesRead + perBatch)])
        let n = slice.count
        let size = spec.count
        var tensors = [Float](repeating: 0, count: n * size)
        var notes = [[String]](repeating: [], count: n)
        var firstError: (Int, VigilError)?
        let lock = NSLock()
        tensors.withUnsafeMutableBufferPointer { tp in
            notes.withUnsafeMutableBufferPointer { np in
                let ctx = UncheckedSendable((tp, np))
                Parallel.forEachChunk(count: n, minChunk: 4) { range in
                    let (tp, np) = ctx.value
                    for i in range {
                        do {
                            let e = slice[i]
                            let data: Data
                            do {
                                data = try Data(contentsOf: e.url)
                            } catch {
                                throw VigilError(.input, "\(e.origin): cannot read the image \(e.url.path) (\(error.localizedDescription))")
                            }
                            let image = try ImageDecoder.decode(data, name: e.url.path)
                            np[i] = try spec.tensor(from: image, name: e.url.lastPathComponent, into: tp.baseAddress! + i * size)
                        } catch {
                            let e = (error as? VigilError) ?? VigilError(.input, "\(slice[i].origin): \(error)")
                            lock.lock()
                            if firstError == nil || firstError!.0 > i { firstError = (i, e) }
                            lock.unlock()
                        }
                    }
                }
            }
        }
        if let (_, e) = firstError { throw e }
        imagesRead += n
        return ImageBatch(
            count: n, ids: slice.map(\.id), tensors: tensors, groupRaw: slice.flatMap(\.groupRaw),
            origins: slice.map(\.origin), notes: notes)
    }
}
