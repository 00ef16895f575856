import ArgumentParser
import Foundation
import VigilEngine

struct ChangeControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change-control",
        abstract: "One folder a regulatory team files for a model change: classification, validation, comparison, digests, a manifest of every file.",
        discussion: """
            Runs what a pre-specified plan asks of a new version and writes it to --out (which must \
            not exist, or be empty): the candidate validated against --plan (validation.json and \
            .html, as vigil validate), both versions compared on the same rows (comparison.json and \
            .html, as vigil compare --plan), the change classified in the plan's PCCP vocabulary \
            (threshold_update, retrain, hyperparameters, architecture, new_features, \
            group_definitions) from the packages themselves and checked against the plan's \
            allowed_changes (a kind the plan does not list needs a new submission), both packages' \
            identities and their manifest, policy and model card, the data hashes (the validation \
            cohort, each policy's fitting data, every --training-data file), the plan, a \
            self-contained index.html with the group-by-group verdict, change-control.json, and \
            SHA256SUMS listing every other file (sha256sum -c SHA256SUMS checks them). The folder's \
            digest is printed: vigil sign --change-control DIR binds a signature to it. \
            Exit status 3 when the change is not acceptable (a criterion or margin not met, or a \
            change outside the plan), 0 when it is.
            """)

    @Option(name: .long, help: "The version in use (package folder).")
    var baseline: String

    @Option(name: .long, help: "The version proposed (package folder).")
    var candidate: String

    @Option(name: .long, help: "Labelled cohort both versions score: CSV with a header, or JSON Lines.")
    var input: String

    @Option(name: .long, help: "Column holding the 0/1 outcome.")
    var label: String

    @Option(name: .long, help: "Validation plan (vigil.validation_plan/1): criteria, margins, allowed_changes.")
    var plan: String

    @Option(name: .long, help: "Output folder (created; an existing one must be empty).")
    var out: String

    @Option(name: .long, help: "Column identifying each row's patient (or stay): resample patients, not rows (default: the plan's).")
    var cluster: String?

    @Option(name: .long, help: "A file the candidate was trained on (repeatable): its SHA-256 is recorded.")
    var trainingData: [String] = []

    @Flag(name: .long, help: "Skip the attribution change in the comparison.")
    var noAttribution = false

    @Option(name: .long, help: "Input format: csv or jsonl (default: from the file name).")
    var inputFormat: CohortFormat?

    @Flag(name: .long, help: "No summary on standard error.")
    var quiet = false

    func run() throws {
        var failed = false
        try runReportingErrors {
            let log = StandardError(quiet: quiet)
            let outURL = URL(fileURLWithPath: out)
            try Self.prepare(outURL)
            let plan = try ValidationPlan.load(path: self.plan)
            let a = try VigilModel.load(path: baseline)
            let b = try VigilModel.load(path: candidate)
            for w in a.loadWarnings { log.line("warning: baseline: \(w)") }
            for w in b.loadWarnings { log.line("warning: candidate: \(w)") }
            guard a.packageDigest != nil, b.packageDigest != nil else {
                throw VigilError(.usage, "--baseline/--candidate: change control is between packages (manifest, model, policy, card); \(a.packageDigest == nil ? baseline : candidate) is a bare model file")
            }
            let training = try trainingData.map { path -> (String, String) in
                do { return (path, try SHA256Digest.hex(ofFileAt: URL(fileURLWithPath: path))) } catch {
                    throw VigilError(.io, "--training-data \(path): cannot read it (\(error.localizedDescription))")
                }
            }
            let classification = ChangeClassification.classify(baseline: a, candidate: b, allowed: plan.allowedChanges)
            log.line("change \(a.name) \(a.version) -> \(b.name) \(b.version): \(classification.changes.isEmpty ? "nothing changed" : classification.changes.map(\.kind.rawValue).joined(separator: ", "))")

            let validation = try Validate.evaluate(model: b, plan: plan, planFile: self.plan, input: input, label: label, cluster: cluster, format: inputFormat, log: log)
            var options = PairedComparison.Options()
            options.replicates = plan.replicates
            options.seed = plan.seed
            options.confidence = plan.confidence
            options.minGroupSize = plan.minGroupSize
            let comparison = try Compare.evaluate(baseline: a, candidate: b, input: input, label: label, fields: plan.groupFields, plan: plan, options: options,
                                                  clusterColumn: try Validate.clusterColumn(flag: cluster, plan: plan), attribution: !noAttribution, format: inputFormat, log: log)
            let filing = ChangeControlFiling(baseline: a, candidate: b, plan: plan, planFile: self.plan, classification: classification,
                                             validation: validation, comparison: comparison, trainingData: training)
            try filing.write(to: outURL, baselineDir: baseline, candidateDir: candidate)
            let digest = try ChangeControlDigest.compute(dir: out).hex
            log.line("validation: \(validation.verdict); non-inferiority: \(filing.marginsNotMet) of \(comparison.nonInferiority.count) lines not met; change \(classification.withinPlan ? "within" : "OUTSIDE") the plan's allowed_changes")
            for c in classification.outsidePlan { log.line("  needs a new submission: \(c.kind.rawValue): \(c.evidence)") }
            let notMet = filing.groupVerdicts.filter { !$0.ok }
            for g in notMet.prefix(8) {
                log.line("  not met at \(g.place): " + (g.validationNotMet + g.marginsNotMet).joined(separator: ", ") + (g.worse.isEmpty ? "" : "; worse: \(g.worse.prefix(3).joined(separator: ", "))"))
            }
            if notMet.count > 8 { log.line("  ... \(notMet.count - 8) more places in index.html") }
            log.line("\(filing.accepted ? "ACCEPTABLE" : "NOT ACCEPTABLE"): \(filing.verdictReason)")
            log.line("wrote \(out) (change-control digest \(digest)); sign with: vigil sign --package \(candidate) --change-control \(out) ...")
            failed = !filing.accepted
        }
        if failed { throw ExitCode(3) }
    }

    /// Creates `url`; an existing folder must be empty (a filing is never overwritten in part).
    static func prepare(_ url: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw VigilError(.usage, "--out \(url.path): exists and is not a folder") }
            let items = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
            guard items.isEmpty else {
                throw VigilError(.usage, "--out \(url.path): the folder is not empty (\(items.count) items); a change-control folder is written whole, into a new or empty folder")
            }
        }
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw VigilError(.io, "--out \(url.path): cannot create it (\(error.localizedDescription))")
        }
    }
}

/// The contents of a change-control folder (docs/FORMATS.md, "Change-control folder").
struct ChangeControlFiling {
    let baseline: VigilModel
    let candidate: VigilModel
    let plan: ValidationPlan
    let planFile: String
    let classification: ChangeClassification
    let validation: ValidationReport
    let comparison: CompareReport
    let trainingData: [(path: String, sha256: String)]

    static let schema = "vigil.change_control/1"

    var marginsNotMet: Int { comparison.nonInferiority.filter { $0.status == .fail || $0.status == .notEvaluable }.count }
    var accepted: Bool { validation.accepted && marginsNotMet == 0 && classification.withinPlan }

    var verdictReason: String {
        var why: [String] = []
        let c = validation.counts
        if !validation.accepted { why.append("\(c.fail + c.notEvaluable) validation criteria lines not met") }
        if marginsNotMet > 0 { why.append("\(marginsNotMet) non-inferiority lines not met") }
        if !classification.withinPlan { why.append("change outside the plan (\(classification.outsidePlan.map(\.kind.rawValue).joined(separator: ", "))): a new submission") }
        return why.isEmpty ? "every criterion and margin of plan '\(plan.name)' \(plan.version) is met, and the change is one the plan allows" : why.joined(separator: "; ")
    }

    /// One row of the group-by-group verdict: a place (overall, a group, between a view's
    /// groups), its validation lines and non-inferiority lines, and what is not met there.
    struct GroupVerdict {
        let place: String
        var validationLines = 0
        var validationNotMet: [String] = []
        var marginLines = 0
        var marginsNotMet: [String] = []
        var worse: [String] = []
        var ok: Bool { validationNotMet.isEmpty && marginsNotMet.isEmpty }
    }

    var groupVerdicts: [GroupVerdict] {
        var rows: [String: GroupVerdict] = [:]
        var order: [String] = []
        func touch(_ place: String, _ f: (inout GroupVerdict) -> Void) {
            if rows[place] == nil { rows[place] = GroupVerdict(place: place); order.append(place) }
            f(&rows[place]!)
        }
        for j in validation.judgements where j.status != .skipped {
            let place: String
            switch (j.criterion.scope.viewName, j.group) {
            case (nil, _): place = "overall"
            case (let v?, let g?): place = "\(v)=\(g)"
            case (let v?, nil): place = "between \(v) groups"
            }
            touch(place) { row in
                row.validationLines += 1
                if j.status == .fail || j.status == .notEvaluable { row.validationNotMet.append("\(j.criterion.id) (\(j.status.rawValue))") }
            }
        }
        for j in comparison.nonInferiority where j.status != .skipped {
            let place = j.view == "overall" ? "overall" : "\(j.view)=\(j.group)"
            touch(place) { row in
                row.marginLines += 1
                if j.status == .fail || j.status == .notEvaluable { row.marginsNotMet.append("\(j.margin.id) (\(j.status.rawValue))") }
            }
        }
        for g in comparison.worseGroups {
            touch(g.place) { row in row.worse = g.findings.map { "\($0.metric.rawValue) \(CompareReport.signed($0.delta))" } }
        }
        let all = order.compactMap { rows[$0] }
        return all.filter { !$0.ok } + all.filter(\.ok)
    }

    static func identity(_ m: VigilModel) -> JSONOutput {
        .object([
            ("name", .string(m.name)), ("version", .string(m.version)), ("format", .string(m.format.rawValue)),
            ("model_sha256", .string(m.sha256)),
            ("policy_version", .string(m.policy.version)), ("policy_sha256", m.policy.sha256.isEmpty ? .null : .string(m.policy.sha256)),
            ("package_digest", m.packageDigest.map { .string($0) } ?? .null),
            ("files", .array((m.packageContents?.files ?? []).map { .object([("path", .string($0.path)), ("sha256", .string($0.sha256))]) })),
        ])
    }

    /// The policy's `fitted_on` data hash (the rows its thresholds were fitted on), if it records one.
    static func policyData(_ m: VigilModel) -> JSONOutput {
        guard m.packageDigest != nil, let sha = m.policy.fittedSHA256, Untrusted.isLowercaseHex(sha, count: 64) else { return .null }
        return .object([("file", m.policy.fittedFile.map { .string(String($0.prefix(512))) } ?? .null), ("sha256", .string(sha)),
                        ("rows", m.policy.fittedRows.map { .int($0) } ?? .null)])
    }

    func json() -> JSONOutput {
        .object([
            ("schema", .string(Self.schema)),
            ("created", .string(ISO8601DateFormatter().string(from: Date()))),
            ("vigil_version", .string(VigilVersion.current)),
            ("baseline", Self.identity(baseline)),
            ("candidate", Self.identity(candidate)),
            ("plan", .object([("name", .string(plan.name)), ("version", .string(plan.version)), ("sha256", .string(plan.sha256)), ("file", .string("plan.json"))])),
            ("classification", .object([
                ("allowed_changes", .array(classification.allowedChanges.map { .string($0) })),
                ("changes", .array(classification.changes.map { .object([("kind", .string($0.kind.rawValue)), ("evidence", .string($0.evidence)), ("allowed", .bool($0.allowed))]) })),
                ("within_plan", .bool(classification.withinPlan)),
                ("needs_new_submission", .bool(!classification.withinPlan)),
            ])),
            ("data", .object([
                ("validation_cohort", .object([("file", .string(validation.cohort.url.lastPathComponent)), ("sha256", .string(validation.cohort.sha256)), ("rows", .int(validation.cohort.count))])),
                ("baseline_policy_fitted_on", Self.policyData(baseline)),
                ("candidate_policy_fitted_on", Self.policyData(candidate)),
                ("training_data", .array(trainingData.map { .object([("file", .string(URL(fileURLWithPath: $0.path).lastPathComponent)), ("sha256", .string($0.sha256))]) })),
            ])),
            ("validation", .object([("accepted", .bool(validation.accepted)), ("verdict", .string(validation.verdict)), ("file", .string("validation.json"))])),
            ("comparison", .object([("non_inferiority_lines", .int(comparison.nonInferiority.count)), ("not_met", .int(marginsNotMet)),
                                    ("worse_groups", .array(comparison.worseGroups.map { .string($0.place) })), ("file", .string("comparison.json"))])),
            ("groups", .array(groupVerdicts.map { g in
                .object([("place", .string(g.place)), ("ok", .bool(g.ok)), ("validation_lines", .int(g.validationLines)),
                         ("validation_not_met", .array(g.validationNotMet.map { .string($0) })), ("margin_lines", .int(g.marginLines)),
                         ("margins_not_met", .array(g.marginsNotMet.map { .string($0) })), ("worse", .array(g.worse.map { .string($0) }))])
            })),
            ("accepted", .bool(accepted)),
            ("verdict", .string((accepted ? "ACCEPTABLE: " : "NOT ACCEPTABLE: ") + verdictReason)),
        ])
    }

    func html() -> String {
        let esc = AuditReport.esc
        func pkg(_ role: String, _ m: VigilModel) -> String {
            "<tr><th>\(role)</th><td>\(esc(m.name)) \(esc(m.version))</td><td>\(esc(m.format.displayName))</td><td><code>\(m.sha256)</code></td><td>\(esc(m.policy.version))\(m.policy.sha256.isEmpty ? "" : " <code>\(m.policy.sha256.prefix(16))…</code>")</td><td><code>\(m.packageDigest ?? "—")</code></td></tr>"
        }
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Vigil change control: \(esc(candidate.name)) \(esc(baseline.version)) → \(esc(candidate.version))</title>
            <style>\(ValidationReport.style)</style></head><body>
            <h1>Change control: \(esc(baseline.name)) \(esc(baseline.version)) → \(esc(candidate.name)) \(esc(candidate.version))</h1>
            <p class="meta">Plan “\(esc(plan.name))” \(esc(plan.version)) (sha256 <code>\(plan.sha256)</code>). Cohort \(esc(validation.cohort.url.lastPathComponent)) \
            (sha256 <code>\(validation.cohort.sha256)</code>), \(validation.cohort.count) rows. Written by Vigil \(esc(VigilVersion.current)).</p>
            <div class="verdict \(accepted ? "ok" : "bad")">\(accepted ? "ACCEPTABLE" : "NOT ACCEPTABLE"): \(esc(verdictReason)).</div>
            <h2>Packages</h2>
            <table><tr><th></th><th>model</th><th>format</th><th>model sha256</th><th>policy</th><th>package digest</th></tr>\(pkg("baseline", baseline))\(pkg("candidate", candidate))</table>
            <h2>Change classification (PCCP)</h2>
            <p class="meta">The plan allows: \(classification.allowedChanges.isEmpty ? "nothing (no allowed_changes)" : esc(classification.allowedChanges.joined(separator: ", "))).</p>
            <table><tr><th>kind</th><th>evidence</th><th>status</th></tr>
            """
        if classification.changes.isEmpty { h += "<tr><td colspan=\"3\">nothing changed</td></tr>" }
        for c in classification.changes {
            h += "<tr><td>\(c.kind.rawValue)</td><td>\(esc(c.evidence))</td><td class=\"\(c.allowed ? "pass" : "fail")\">\(c.allowed ? "allowed by the plan" : "outside the plan: needs a new submission")</td></tr>"
        }
        h += "</table><h2>Group by group</h2><p class=\"meta\">Validation criteria judged on the candidate (validation.html), non-inferiority margins on candidate − baseline (comparison.html); groups with something not met first.</p>"
        h += "<table><tr><th>place</th><th>verdict</th><th>validation lines</th><th>not met</th><th>margin lines</th><th>not met</th><th>worse than baseline</th></tr>"
        for g in groupVerdicts {
            h += "<tr><td>\(esc(g.place))</td><td class=\"\(g.ok ? "pass" : "fail")\">\(g.ok ? "met" : "NOT MET")</td><td class=\"num\">\(g.validationLines)</td><td>\(esc(g.validationNotMet.joined(separator: ", ")))</td>"
                + "<td class=\"num\">\(g.marginLines)</td><td>\(esc(g.marginsNotMet.joined(separator: ", ")))</td><td>\(esc(g.worse.joined(separator: ", ")))</td></tr>"
        }
        h += "</table><h2>Data</h2><table><tr><th>what</th><th>file</th><th>sha256</th></tr>"
        h += "<tr><td>validation cohort</td><td>\(esc(validation.cohort.url.lastPathComponent))</td><td><code>\(validation.cohort.sha256)</code></td></tr>"
        for (role, m) in [("baseline", baseline), ("candidate", candidate)] {
            if case .object(let o) = Self.policyData(m), case .string(let sha)? = o.first(where: { $0.0 == "sha256" })?.1 {
                let file: String = { if case .string(let f)? = o.first(where: { $0.0 == "file" })?.1 { return f } else { return "" } }()
                h += "<tr><td>\(role) policy fitted on</td><td>\(esc(file))</td><td><code>\(sha)</code></td></tr>"
            }
        }
        for t in trainingData { h += "<tr><td>training data (declared)</td><td>\(esc(URL(fileURLWithPath: t.path).lastPathComponent))</td><td><code>\(t.sha256)</code></td></tr>" }
        h += "</table><h2>Files</h2><p class=\"meta\"><a href=\"validation.html\">validation.html</a>, <a href=\"comparison.html\">comparison.html</a>, change-control.json, plan.json, baseline/ and candidate/ (manifest, policy, model card); SHA256SUMS lists the SHA-256 of each (<code>sha256sum -c SHA256SUMS</code>).</p></body></html>\n"
        return h
    }

    /// Writes the folder: reports, copies, the summary, then SHA256SUMS over everything else.
    func write(to dir: URL, baselineDir: String, candidateDir: String) throws {
        func put(_ name: String, _ data: Data) throws {
            let url = dir.appendingPathComponent(name)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url, options: .atomic)
            } catch {
                throw VigilError(.io, "\(url.path): cannot write it (\(error.localizedDescription))")
            }
        }
        try put("validation.json", Data(validation.json().text().utf8))
        try put("validation.html", Data(validation.html().utf8))
        try put("comparison.json", Data(comparison.json().text().utf8))
        try put("comparison.html", Data(comparison.html().utf8))
        guard let planData = FileManager.default.contents(atPath: planFile) else { throw VigilError(.io, "\(planFile): cannot read it again") }
        try put("plan.json", planData)
        for (role, src) in [("baseline", baselineDir), ("candidate", candidateDir)] {
            for name in [Manifest.fileName, PackageDigest.policyFile, PackageDigest.modelCardFile] {
                if let data = FileManager.default.contents(atPath: URL(fileURLWithPath: src).appendingPathComponent(name).path) {
                    try put("\(role)/\(name)", data)
                }
            }
        }
        try put("change-control.json", Data(json().text().utf8))
        try put("index.html", Data(html().utf8))
        // SHA256SUMS: every file written, in sha256sum's format, sorted by path.
        var lines: [String] = []
        let files = (FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []).filter { rel in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: dir.appendingPathComponent(rel).path, isDirectory: &isDir) && !isDir.boolValue
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for rel in files { lines.append("\(try SHA256Digest.hex(ofFileAt: dir.appendingPathComponent(rel)))  \(rel)") }
        try put("SHA256SUMS", Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
