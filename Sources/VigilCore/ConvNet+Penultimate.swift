/// The net up to its classifier head, for the out-of-distribution guard of image models.
extension ConvNet {
    /// The same net computing the input of its last Gemm or MatMul (the penultimate layer's
    /// activations, one vector a sample) instead of its output; nil when it has no such node or
    /// that input is not computed from the image. Shares the constants; plans its own buffers.
    package func penultimate() -> ConvNet? {
        guard let last = nodes.lastIndex(where: { n in
            switch n.operation {
            case .gemm, .matMul: return true
            default: return false
            }
        }), last > 0 else { return nil }
        let a = nodes[last].inputs[0]
        guard tensors[a].kind == .computed else { return nil }
        let prefix = Array(nodes[..<last])
        guard prefix.contains(where: { $0.output == a }) else { return nil }
        let steps = Array(plan.steps[..<last])
        let plan = Plan(tensors: tensors, nodes: prefix, steps: steps, input: input, output: a)
        return ConvNet(
            tensors: tensors, nodes: prefix, input: input, output: a, batchMode: batchMode,
            chunkCapacity: chunkCapacity, notes: notes, constants: constants, plan: plan)
    }
}
