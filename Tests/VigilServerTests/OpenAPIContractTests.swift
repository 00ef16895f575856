import Foundation
import Testing
import VigilEngine
import VigilJSON
import VigilServer
import VigilTesting

/// The OpenAPI 3.1 contract (docs/openapi.json) stays true: the server serves it byte for byte at
/// GET /openapi.json, it documents exactly the routes the server answers (and their methods), and
/// each operation answers a probe with a documented status and that status's documented content
/// type. (scripts/check_openapi.sh validates the document with openapi-spec-validator, sends
/// known requests checked against the schemas, and runs schemathesis.)
struct OpenAPIContractTests {
    static let docURL = Fixtures.repositoryRoot.appendingPathComponent("docs/openapi.json")

    static func document() throws -> [String: JSONValue] {
        guard case .object(let d) = try JSONValue.parse(try Data(contentsOf: docURL)) else { throw CocoaError(.fileReadCorruptFile) }
        return d
    }

    /// `{x}` path parameters written as `{}`, so `{id}` and `{name}` compare equal.
    static func shape(_ path: String) -> String { path.replacingOccurrences(of: #"\{[^}]+\}"#, with: "{}", options: .regularExpression) }

    @Test func theDocumentIsTheOneServedAndCoversEveryRoute() async throws {
        let text = try Data(contentsOf: Self.docURL)
        #expect(Data(OpenAPIDocument.json.utf8) == text, "Sources/VigilServer/OpenAPIDocument.swift is stale: run scripts/openapi/embed.sh")
        let d = try Self.document()
        #expect(d["openapi"] == .string("3.1.0"))
        guard case .object(let paths)? = d["paths"] else { Issue.record("no paths"); return }
        var documented: [String: Set<String>] = [:]
        for (p, ops) in paths {
            guard case .object(let o) = ops else { continue }
            documented[Self.shape(p)] = Set(o.keys.filter { ["get", "post", "put", "delete", "patch", "head"].contains($0) }.map { $0.uppercased() })
        }
        var served: [String: Set<String>] = [:]
        for (p, methods) in Routes.table { served[Self.shape(p)] = Set(methods.filter { $0 != "HEAD" }) }
        #expect(Set(documented.keys) == Set(served.keys), "documented only: \(Set(documented.keys).subtracting(served.keys).sorted()); served only: \(Set(served.keys).subtracting(documented.keys).sorted())")
        for (p, methods) in served { #expect(documented[p] == methods, "\(p): served \(methods.sorted()), documented \(documented[p]?.sorted() ?? [])") }
    }

    @Test func everyOperationAnswersAsDocumented() async throws {
        let d = try Self.document()
        guard case .object(let paths)? = d["paths"], case .object(let components)? = d["components"] else { Issue.record("no paths"); return }
        func resolve(_ v: JSONValue) -> JSONValue {
            guard case .object(let o) = v, case .string(let ref)? = o["$ref"], ref.hasPrefix("#/components/") else { return v }
            let parts = ref.dropFirst("#/components/".count).split(separator: "/").map(String.init)
            var cur: JSONValue = .object(components)
            for p in parts { if case .object(let c) = cur, let next = c[p] { cur = next } else { return v } }
            return resolve(cur)
        }
        let dir = try TemporaryDirectory("vigil-openapi")
        defer { dir.remove() }
        let toy = try ToyPackage()
        defer { toy.remove() }
        let sepsis = Fixtures.repositoryRoot.appendingPathComponent("models/sepsis").path
        let s = try await RunningServer(options: RunningServer.options(models: [toy.path, sepsis], dir: dir, ledger: true))
        let c = s.unixClient()
        var probed = 0
        for (template, ops) in paths.sorted(by: { $0.key < $1.key }) {
            guard case .object(let o) = ops else { continue }
            for (method, op) in o where ["get", "post"].contains(method) {
                // The FHIR and CDS routes are the sepsis model's; the others take the toy.
                let path = template.replacingOccurrences(of: "{name}", with: template.hasPrefix("/fhir") ? "sepsis" : "toy").replacingOccurrences(of: "{id}", with: "sepsis")
                let r = try await offPool { try c.request(method.uppercased(), path, body: method == "post" ? Data("{}".utf8) : nil, headers: ["Content-Type": "application/json"]) }
                guard case .object(let opo) = op, case .object(let responses)? = opo["responses"] else { Issue.record("\(method) \(template): no responses"); continue }
                guard let documented = responses[String(r.status)] ?? responses["default"] else {
                    Issue.record("\(method.uppercased()) \(path) answered \(r.status), not documented (\(responses.keys.sorted())): \(r.text.prefix(200))")
                    continue
                }
                if case .object(let resp) = resolve(documented), case .object(let content)? = resp["content"] {
                    let type = (r.headers["content-type"] ?? "").split(separator: ";").first.map(String.init) ?? ""
                    #expect(content.keys.contains { $0.split(separator: ";").first.map(String.init) == type }, "\(method.uppercased()) \(path) \(r.status): content type '\(type)', documented \(content.keys.sorted())")
                }
                probed += 1
            }
        }
        #expect(probed == 19)
    }
}
