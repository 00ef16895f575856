import Synchronization
import VigilKernels

/// A node resolved for the kernels: geometry and sizes for one sample; the executor scales the
/// batched axis at run time.
enum Step: Sendable {
    case conv(Conv2DGeometry, activation: TensorKernels.Unary?)
    case maxPool(Conv2DGeometry)
    case averagePool(Conv2DGeometry, includePad: Bool)
    case globalAveragePool(planeSize: Int)
    case unary(TensorKernels.Unary)
    /// Sizes for one sample; `outer` grows with the batch.
    case softmax(outer: Int, axis: Int, inner: Int)
    case channelAffine(channels: Int, inner: Int)
    case gemm(m: Int, n: Int, k: Int, ConvNet.Gemm, cShape: [Int]?)
    /// A and B with 1-D operands promoted to 2-D (NumPy's matmul rules).
    case matMul(a: [Int], b: [Int])
    case binary(TensorKernels.Binary)
    case concat(axis: Int)
    /// Reshape, Flatten, Identity, Dropout: the output shares the input's storage.
    case view
}

/// Where each tensor lives, planned once at load. Offsets are in floats per sample: a chunk of
/// `n` samples puts tensor t at `arena + offset[t] * n`, so the intervals planned for one sample
/// stay disjoint for any chunk size. Buffers are reused as soon as their last reader has run
/// (first fit over a free list); views share their source's storage.
struct Plan: Sendable {
    enum Storage: Sendable, Equatable {
        case input
        /// A constant's storage (by the constant tensor's id).
        case constant(Int)
        case arena(offset: Int)
    }

    let storage: [Storage]
    let arenaFloatsPerSample: Int
    let steps: [Step]
    let nodeInputs: [[Int]]
    let nodeOutputs: [Int]
    let shapes: [[Int]]
    let batched: [Bool]
    let output: Int

    init(tensors: [ConvNet.Tensor], nodes: [ConvNet.Node], steps: [Step], input: Int, output: Int) {
        self.steps = steps
        self.nodeInputs = nodes.map(\.inputs)
        self.nodeOutputs = nodes.map(\.output)
        self.shapes = tensors.map(\.shape)
        self.batched = tensors.map(\.isBatched)
        self.output = output
        var root = Array(tensors.indices)
        for (i, node) in nodes.enumerated() {
            if case .view = steps[i] { root[node.output] = root[node.inputs[0]] }
        }
        var lastUse = [Int](repeating: -1, count: tensors.count)
        for (i, node) in nodes.enumerated() {
            for t in node.inputs { lastUse[root[t]] = max(lastUse[root[t]], i) }
        }
        lastUse[root[output]] = Int.max
        var storage = tensors.indices.map { t -> Storage in tensors[t].kind == .input ? .input : .constant(t) }
        var free: [(offset: Int, size: Int)] = []
        var top = 0
        var sizes = [Int](repeating: 0, count: tensors.count)
        for (i, node) in nodes.enumerated() {
            if case .view = steps[i] {
                storage[node.output] = storage[root[node.output]]
            } else {
                let size = tensors[node.output].count
                sizes[node.output] = size
                var offset = -1
                if let k = free.firstIndex(where: { $0.size >= size }) {
                    offset = free[k].offset
                    if free[k].size == size { free.remove(at: k) } else { free[k] = (offset + size, free[k].size - size) }
                } else {
                    offset = top
                    top += size
                }
                storage[node.output] = .arena(offset: offset)
            }
            for r in Set(node.inputs.map { root[$0] }) where lastUse[r] == i {
                guard case .arena(let offset) = storage[r] else { continue }
                free.append((offset, sizes[r]))
                free.sort { $0.offset < $1.offset }
                // Merge neighbours.
                var merged: [(offset: Int, size: Int)] = []
                for f in free {
                    if let last = merged.last, last.offset + last.size == f.offset {
                        merged[merged.count - 1].size += f.size
                    } else {
                        merged.append(f)
                    }
                }
                free = merged
            }
        }
        self.storage = storage
        self.arenaFloatsPerSample = max(top, 1)
    }
}

/// The constants, in one allocation that lives as long as the net (never written after build).
/// Immutable after `init`, so sharing it across threads is safe.
final class ConstantStore: @unchecked Sendable {
    let slot: [Int: Int]
    private let base: UnsafeMutablePointer<Float>

    init(_ data: [Int: [Float]], tensorCount: Int) {
        var slot: [Int: Int] = [:]
        var total = 0
        for id in data.keys.sorted() {
            slot[id] = total
            total += data[id]!.count
        }
        let base = UnsafeMutablePointer<Float>.allocate(capacity: max(total, 1))
        for (id, values) in data where !values.isEmpty {
            values.withUnsafeBufferPointer { (base + slot[id]!).initialize(from: $0.baseAddress!, count: values.count) }
        }
        self.base = base
        self.slot = slot
    }

    deinit { base.deallocate() }

    func pointer(_ offset: Int) -> UnsafeMutablePointer<Float> { base + offset }
}

/// Scratch space that grows to the largest request and is then reused (im2col matrices).
final class ScratchBuffer {
    private(set) var capacity = 0
    private var storage: UnsafeMutablePointer<Float>?

    func pointer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity || storage == nil {
            storage?.deallocate()
            capacity = max(count, 1)
            storage = .allocate(capacity: capacity)
        }
        return storage!
    }

    deinit { storage?.deallocate() }
}

/// One thread's buffers: the planned tensors for `chunkCapacity` samples plus scratch.
final class Arena {
    let values: UnsafeMutablePointer<Float>
    let floats: Int
    let scratch = ScratchBuffer()

    init(floats: Int) {
        self.floats = max(floats, 1)
        values = .allocate(capacity: self.floats)
        values.initialize(repeating: 0, count: self.floats)
    }

    deinit { values.deallocate() }
}

/// Arenas handed to one caller at a time; as many exist as calls ran concurrently.
final class ArenaPool: Sendable {
    private let idle = Mutex<[UncheckedSendable<Arena>]>([])
    let floats: Int

    init(floats: Int) { self.floats = floats }

    func withArena<R>(_ body: (Arena) throws -> R) rethrows -> R {
        let arena = idle.withLock { $0.popLast() }?.value ?? Arena(floats: floats)
        defer { idle.withLock { $0.append(UncheckedSendable(arena)) } }
        return try body(arena)
    }
}

/// Pairs of scratch buffers handed to one caller at a time (as `ArenaPool`), for buffers whose
/// size depends on the call (`ConvNet.gradient`'s batch).
final class ScratchPool: Sendable {
    private let idle = Mutex<[UncheckedSendable<(ScratchBuffer, ScratchBuffer)>]>([])

    func withBuffers<R>(_ body: (ScratchBuffer, ScratchBuffer) throws -> R) rethrows -> R {
        let pair = idle.withLock { $0.popLast() }?.value ?? (ScratchBuffer(), ScratchBuffer())
        defer { idle.withLock { $0.append(UncheckedSendable(pair)) } }
        return try body(pair.0, pair.1)
    }
}
