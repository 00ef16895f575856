#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Link functions, evaluated exactly as the producing libraries do (in `Double`).
package enum Activations {
    /// 1 / (1 + exp(-scale * x)), LightGBM's `sigmoid:` form and XGBoost's logistic (scale 1).
    @inline(__always)
    package static func sigmoid(_ x: Double, scale: Double = 1) -> Double {
        1.0 / (1.0 + exp(-scale * x))
    }

    /// In-place softmax over `count` values: exp(x - max) / sum, as LightGBM's `Common::Softmax`.
    package static func softmax(_ values: UnsafeMutablePointer<Double>, count: Int) {
        guard count > 0 else { return }
        var maxValue = values[0]
        for i in 1..<count where values[i] > maxValue { maxValue = values[i] }
        var sum = 0.0
        for i in 0..<count {
            values[i] = exp(values[i] - maxValue)
            sum += values[i]
        }
        for i in 0..<count { values[i] /= sum }
    }

    /// log(p / (1 - p)), XGBoost's `ProbToMargin` for logistic objectives.
    package static func logit(_ p: Double) -> Double { log(p / (1 - p)) }
}
