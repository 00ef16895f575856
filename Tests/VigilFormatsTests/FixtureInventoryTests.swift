import Foundation
import Testing
import VigilTesting

/// The reference fixtures are all there: a lost or emptied family folder fails here (and its
/// parameterized suites fail on the case `Fixtures.cases` gives for it) instead of turning those
/// suites green with no cases.
struct FixtureInventoryTests {
    @Test(arguments: ["lightgbm", "xgboost", "linear"])
    func eachFamilyHasItsCommittedCases(family: String) throws {
        let cases = Fixtures.cases(family)
        let expected = try #require(Fixtures.expectedCaseCounts[family])
        #expect(cases.count == expected, "\(family): \(cases.count) case folders, \(expected) committed")
        #expect(!cases.contains { $0.contains(Fixtures.missingMarker) })
        for c in cases {
            var isDir: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: Fixtures.url(c).path, isDirectory: &isDir) && isDir.boolValue, "\(c) is a folder")
        }
    }

    @Test func aLostFamilyFolderGivesOneCaseThatFails() {
        let cases = Fixtures.cases("no-such-family")
        #expect(cases.count == 1)
        #expect(cases.allSatisfy { $0.contains(Fixtures.missingMarker) })
        #expect(!FileManager.default.fileExists(atPath: Fixtures.url(cases[0]).path))
    }
}
