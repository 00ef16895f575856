import Foundation

/// Calibration slope and intercept: the logistic regression `P(label) = sigmoid(a + b * logit(risk))`
/// fitted by Newton's method (iteratively reweighted least squares; the 2x2 system is solved in
/// closed form). A perfectly calibrated model has slope 1 and intercept 0; a slope below 1 means
/// risks are too extreme. Risks are clipped to `[1e-15, 1 - 1e-15]` before the logit so that 0
/// and 1 stay finite. Unregularised, like scikit-learn's `LogisticRegression(penalty=None)`.
package enum LogisticCalibration {
    package struct Fit: Sendable, Equatable {
        package let intercept: Double
        package let slope: Double
        package let iterations: Int
    }

    package struct Failure: Error, Sendable, Equatable {
        package let reason: String
    }

    package static let clip = 1e-15
    package static let maxIterations = 100

    package static func logit(_ p: Double) -> Double {
        let q = min(max(p, clip), 1 - clip)
        return log(q / (1 - q))
    }

    package static func fit(_ s: LabelledScores, weights: [Double]? = nil) -> Result<Fit, Failure> {
        var pos = 0.0, neg = 0.0
        var minX = Double.infinity, maxX = -Double.infinity
        var x = [Double](repeating: 0, count: s.count)
        for i in 0..<s.count {
            x[i] = logit(s.risks[i])
            let w = weights?[i] ?? 1
            guard w != 0 else { continue }
            if s.labels[i] { pos += w } else { neg += w }
            minX = min(minX, x[i])
            maxX = max(maxX, x[i])
        }
        guard pos > 0, neg > 0 else {
            return .failure(Failure(reason: "needs both classes; the group has \(pos == 0 ? "no positive" : "no negative") labels"))
        }
        guard maxX > minX else { return .failure(Failure(reason: "every risk in the group is the same; the slope is not identifiable")) }
        // Start from the intercept-only fit (slope 0): well inside the domain, so Newton converges
        // for any data that is not separable.
        var a = log(pos / neg), b = 0.0
        for iteration in 1...maxIterations {
            var g0 = 0.0, g1 = 0.0, h00 = 0.0, h01 = 0.0, h11 = 0.0
            for i in 0..<s.count {
                let w = weights?[i] ?? 1
                guard w != 0 else { continue }
                let eta = a + b * x[i]
                let p = 1 / (1 + exp(-eta))
                let r = (s.labels[i] ? 1 : 0) - p
                let v = max(p * (1 - p), 1e-300)
                g0 += w * r
                g1 += w * r * x[i]
                h00 += w * v
                h01 += w * v * x[i]
                h11 += w * v * x[i] * x[i]
            }
            let det = h00 * h11 - h01 * h01
            guard det > 0, det.isFinite else {
                return .failure(Failure(reason: "the calibration fit is singular (labels separated by risk)"))
            }
            let da = (h11 * g0 - h01 * g1) / det
            let db = (h00 * g1 - h01 * g0) / det
            a += da
            b += db
            guard a.isFinite, b.isFinite, abs(b) < 1e6 else {
                return .failure(Failure(reason: "the calibration fit diverges (labels separated by risk)"))
            }
            if abs(da) <= 1e-12 * max(1, abs(a)), abs(db) <= 1e-12 * max(1, abs(b)) {
                return .success(Fit(intercept: a, slope: b, iterations: iteration))
            }
        }
        return .failure(Failure(reason: "the calibration fit did not converge in \(maxIterations) Newton steps"))
    }
}
