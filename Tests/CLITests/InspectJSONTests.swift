import Foundation
import Testing
import VigilTesting

/// `vigil inspect --json` on bare model files (issue 13: every bare LightGBM or XGBoost file
/// trapped on a duplicate dictionary key 'format', the loader's note and the fact).
struct InspectJSONTests {
    @Test(arguments: ["lightgbm/stumps/model.txt", "xgboost/default_left/model.json", "linear/sklearn_onnx_float/model.onnx", "cnn/mlp_softmax/model.onnx"])
    func inspectJSONOnABareFilePrintsOneObject(_ file: String) throws {
        let r = try CLI.run(["inspect", "--model", Fixtures.url(file).path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(object?["format"] is String, "\(r.stdout.prefix(300))")
        let text = try CLI.run(["inspect", "--model", Fixtures.url(file).path])
        #expect(text.status == 0, "\(text.stderr)")
    }
}
