public import Foundation

/// Runs the built `vigil` executable (CLITests depend on it, so `swift test` builds it).
public enum CLI {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// The `vigil` binary next to the test bundle.
    public static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("vigil")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return Fixtures.repositoryRoot.appendingPathComponent(".build/debug/vigil")
    }

    /// Runs `vigil` with the test's environment, plus `environment` and without `unsetting`.
    public static func run(
        _ arguments: [String], currentDirectory: URL? = nil, environment: [String: String] = [:], unsetting: [String] = []
    ) throws -> Result {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        p.currentDirectoryURL = currentDirectory ?? Fixtures.repositoryRoot
        if !environment.isEmpty || !unsetting.isEmpty {
            var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            for name in unsetting { env.removeValue(forKey: name) }
            p.environment = env
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes before waiting so a large output cannot block the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }
}
