import Foundation
import Testing
import VigilEngine
import VigilTesting

/// The declared feature pipeline: the sepsis package's declaration, run by the engine on raw
/// hourly rows of held-out test stays, equals `train_sepsis.py`'s features cell for cell
/// (Tests/Fixtures/pipeline, written by models/training/sepsis_pipeline.py from the training
/// script's own `features()`); the operations' edge cases; the declaration and the event table
/// read strictly.
struct FeaturePipelineTests {
    static let sepsis = Fixtures.repositoryRoot.appendingPathComponent("models/sepsis")

    @Test func sepsisPipelineEqualsTheTrainingScriptCellForCell() throws {
        let model = try VigilModel.load(path: Self.sepsis.path)
        let pipeline = try #require(model.pipeline)
        #expect(pipeline.inputs.count == 28)
        let reader = try EventTableReader(url: Fixtures.url("pipeline/sepsis_events.csv"), model: model)
        let expected = try FixtureTable(contentsOf: Fixtures.url("pipeline/sepsis_features.csv"))
        #expect(expected.header == ["row_id"] + model.schema.names)
        var row = 0, cells = 0, present = 0
        while let batch = try reader.nextBatch(maxRows: 333) {
            for r in 0..<batch.count {
                try #require(row < expected.rows.count)
                let want = expected.rows[row]
                #expect(batch.ids[r] == want[0], "row \(row)")
                for j in 0..<model.schema.count {
                    let got = batch.features[r * model.schema.count + j]
                    let text = want[j + 1]
                    let w = text.isEmpty ? Double.nan : try #require(Double(text))
                    if !w.isNaN { present += 1 }
                    #expect(got == w || (got.isNaN && w.isNaN), "\(want[0]) \(model.schema.names[j]): engine \(got), training script \(text)")
                    cells += 1
                }
                row += 1
            }
        }
        #expect(row == expected.rows.count && row == 1493)
        #expect(cells == 1493 * 54 && present > 20_000)
    }

    /// One entity, hand-computed: last, change (window reaching before the start is missing),
    /// time since, count/min/max/mean over (t - W, t], an out-of-order arrival, static, time.
    @Test func operationsOnOneHistory() throws {
        let schema = try FeatureSchema(["last", "d2", "since", "n2", "lo", "hi", "avg", "all", "age", "t"].map {
            FeatureSpec(name: $0, kind: .numeric, unit: nil, description: nil, range: nil, missingAllowed: true, mean: nil)
        })
        let decl = """
            {"entity": "stay", "time": {"field": "t", "unit": "h"}, "inputs": [
              {"name": "x", "kind": "observation", "unit": "mg/dL"}, {"name": "age", "kind": "static"}],
             "features": {"last": {"op": "last", "input": "x"}, "d2": {"op": "change", "input": "x", "window": 2},
              "since": {"op": "time_since", "input": "x"}, "n2": {"op": "count", "input": "x", "window": 2},
              "lo": {"op": "min", "input": "x", "window": 2}, "hi": {"op": "max", "input": "x", "window": 2},
              "avg": {"op": "mean", "input": "x", "window": 2}, "all": {"op": "count", "input": "x"},
              "age": {"op": "static", "input": "age"}, "t": {"op": "time"}}}
            """
        let p = try FeaturePipeline(try JSONNode.parse(Data(decl.utf8), file: "m"), schema: schema)
        var h = EntityHistory(pipeline: p, entity: "s1")
        h.saw(1)
        h.observe(0, time: 2, value: 10)
        h.observe(0, time: 5, value: 4)
        h.observe(0, time: 4, value: 7)  // arrives late: kept in time order
        h.statics[1] = 61
        h.settle()
        func at(_ t: Double) -> [Double] { p.features(h, at: t) }
        let nan = Double.nan
        func same(_ a: [Double], _ b: [Double]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) } }
        // t=1: nothing observed yet; 1 - 2 < start 1, so no change either.
        #expect(same(at(1), [nan, nan, nan, 0, nan, nan, nan, 0, 61, 1]))
        // t=3: last 10 (t=2), change 10 - last(1) = missing (none at t<=1), since 1, window (1, 3] = {10}.
        #expect(same(at(3), [10, nan, 1, 1, 10, 10, 10, 1, 61, 3]))
        // t=5: last 4, change 4 - last(3) = 4 - 10, since 0, window (3, 5] = {7, 4}.
        #expect(same(at(5), [4, -6, 0, 2, 4, 7, 5.5, 3, 61, 5]))
        // t=6.5: window (4.5, 6.5] = {4}; change 4 - last(4.5) = 4 - 7.
        #expect(same(at(6.5), [4, -3, 1.5, 1, 4, 4, 4, 3, 61, 6.5]))
    }

    @Test func unitsConvertWithinADimensionOnly() {
        #expect(UCUMUnit.convert(98.6, from: "[degF]", to: "Cel").map { abs($0 - 37) < 1e-12 } == true)
        #expect(UCUMUnit.convert(21, from: "%", to: "1").map { abs($0 - 0.21) < 1e-15 } == true)
        #expect(UCUMUnit.convert(1, from: "g/dL", to: "mg/dL") == 1000)
        #expect(UCUMUnit.convert(80, from: "{beats}/min", to: "/min") == 80)
        #expect(UCUMUnit.convert(12, from: "kPa", to: "mm[Hg]").map { abs($0 - 90.007) < 1e-3 } == true)
        #expect(UCUMUnit.convert(1.2, from: "mg/dL", to: "mmol/L") == nil, "mass to substance needs a molar mass")
        #expect(UCUMUnit.convert(1, from: "furlongs", to: "m") == nil)
    }

    @Test(arguments: [
        (#"{"last": {"op": "last", "input": "x"}}"#, "'v' has no derivation"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "last", "input": "x", "window": 3}}"#, "op 'last' takes no window"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "change", "input": "x"}}"#, "op 'change' needs a window"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "change", "input": "x", "window": -1}}"#, "must be a positive number"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "median", "input": "x"}}"#, "'median' is not an operation"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "last", "input": "nope"}}"#, "'nope' is not a declared input"),
        (#"{"last": {"op": "static", "input": "x"}, "v": {"op": "time"}}"#, "op 'static' needs a static input"),
        (#"{"last": {"op": "last", "input": "x"}, "v": {"op": "time"}, "w": {"op": "time"}}"#, "'w' is not a feature of the model"),
    ])
    func declarationsAreReadStrictly(features: String, rule: String) throws {
        let schema = try FeatureSchema(["last", "v"].map { FeatureSpec(name: $0, kind: .numeric, unit: nil, description: nil, range: nil, missingAllowed: true, mean: nil) })
        let decl = #"{"entity": "e", "time": {"field": "t", "unit": "h"}, "inputs": [{"name": "x", "kind": "observation"}], "features": "# + features + "}"
        let error = #expect(throws: VigilError.self) { _ = try FeaturePipeline(try JSONNode.parse(Data(decl.utf8), file: "m"), schema: schema) }
        #expect(error?.message.contains(rule) == true, "\(error?.message ?? "")")
    }

    @Test func unknownUnitsAndUnusedInputsAreRefused() throws {
        let schema = try FeatureSchema([FeatureSpec(name: "v", kind: .numeric, unit: nil, description: nil, range: nil, missingAllowed: true, mean: nil)])
        for (decl, rule) in [
            (#"{"entity": "e", "time": {"field": "t", "unit": "h"}, "inputs": [{"name": "x", "kind": "observation", "unit": "furlongs"}], "features": {"v": {"op": "last", "input": "x"}}}"#, "is not a UCUM unit"),
            (#"{"entity": "e", "time": {"field": "t", "unit": "kg"}, "inputs": [{"name": "x", "kind": "observation"}], "features": {"v": {"op": "last", "input": "x"}}}"#, "is not a UCUM time unit"),
            (#"{"entity": "e", "time": {"field": "t", "unit": "h"}, "inputs": [{"name": "x", "kind": "observation"}, {"name": "y", "kind": "observation"}], "features": {"v": {"op": "last", "input": "x"}}}"#, "input 'y' is not used"),
            (#"{"entity": "e", "time": {"field": "t", "unit": "h"}, "inputs": [{"name": "x", "kind": "observation", "fhir": {"patient": "gender"}}], "features": {"v": {"op": "last", "input": "x"}}}"#, "patient gender needs a map"),
        ] {
            let error = #expect(throws: VigilError.self) { _ = try FeaturePipeline(try JSONNode.parse(Data(decl.utf8), file: "m"), schema: schema) }
            #expect(error?.message.contains(rule) == true, "\(error?.message ?? "")")
        }
    }

    /// The raw table is read strictly: an entity's rows contiguous and in time order, times
    /// numbers, every input column present; each refusal names the line.
    @Test func eventTablesAreReadStrictly() throws {
        let model = try VigilModel.load(path: Self.sepsis.path)
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let fixture = try String(contentsOf: Fixtures.url("pipeline/sepsis_events.csv"), encoding: .utf8)
        var lines = fixture.split(separator: "\n").map(String.init)
        let header = lines.removeFirst()
        let first = lines.prefix { $0.hasPrefix(lines[0].prefix(while: { $0 != "," }) + ",") }
        #expect(first.count >= 3)
        let other = lines[first.count]
        func drain(_ text: String) throws {
            let r = try EventTableReader(url: try dir.write("e.csv", text), model: model)
            while try r.nextBatch(maxRows: 7) != nil {}
        }
        try drain(header + "\n" + lines.joined(separator: "\n") + "\n")
        let cases: [(String, String)] = [
            ([header, first[0], other, first[1]].joined(separator: "\n"), "line 4, field 'patient_id'"),
            ([header, first[1], first[0]].joined(separator: "\n"), "line 3, field 'ICULOS'"),
            ([header, { var f = first[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init); f[1] = "soon"; return f.joined(separator: ",") }()].joined(separator: "\n"), "'ICULOS': value 'soon'"),
            ([header.replacingOccurrences(of: ",Lactate,", with: ",Lactic,")].joined(separator: "\n"), "'Lactate'"),
            ([header, first[0] + ",9"].joined(separator: "\n"), "line 2: 31 fields where the header has 30"),
        ]
        for (text, rule) in cases {
            let error = #expect(throws: VigilError.self) { try drain(text + "\n") }
            #expect(error?.message.contains(rule) == true, "\(rule): \(error?.message ?? "")")
        }
    }
}
