import ArgumentParser
import VigilEngine

@main
struct Vigil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Inference for clinical risk models with fairness guardrails.",
        discussion: """
            Models load from the files their training tools write (LightGBM text, XGBoost JSON, \
            ONNX logistic regression, ONNX CNNs exported by PyTorch, Vigil linear JSON), as a \
            model package folder (manifest.json + model file + policy.json) or a bare model file.
            """,
        version: VigilVersion.current,
        subcommands: [Score.self, Inspect.self, Bench.self, FitThresholds.self, Audit.self, Validate.self, Compare.self, ChangeControlCommand.self, Sign.self, VerifySignature.self, Serve.self, Monitor.self, Ledger.self, Load.self, MergeSummaries.self, Reference.self])
}
