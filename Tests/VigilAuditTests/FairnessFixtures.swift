import Foundation
import VigilEngine
import VigilTesting

/// The fairness reference data: `Tests/Fixtures/fairness/cohort.csv` (the shipped readmission
/// test cohort's `reference_risk` and `label`, groups mapped as the manifest maps them) and
/// `expected.json`, both written by `make_fairness_fixtures.py` with Fairlearn, AIF360 and
/// scikit-learn.
enum FairnessFixtures {
    struct Cohort {
        let ids: [String]
        let race: [String]
        let sex: [String]
        let labels: [Bool]
        let risks: [Double]

        func field(_ name: String) -> [String] { name == "race" ? race : sex }
    }

    static let cohort: Cohort = {
        let t = try! FixtureTable(contentsOf: Fixtures.url("fairness/cohort.csv"))
        let c = { (name: String) in t.rows.map { $0[t.column(name)!] } }
        return Cohort(ids: c("id"), race: c("race"), sex: c("sex"), labels: c("label").map { $0 == "1" },
                      risks: c("risk").map { Double($0)! })
    }()

    nonisolated(unsafe) static let expected: [String: Any] = {
        let data = try! Data(contentsOf: Fixtures.url("fairness/expected.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static var threshold: Double { (expected["threshold"] as! NSNumber).doubleValue }

    /// A JSON number or null.
    static func number(_ v: Any?) -> Double? {
        guard let n = v as? NSNumber, !(v is NSNull) else { return nil }
        return n.doubleValue
    }
}
