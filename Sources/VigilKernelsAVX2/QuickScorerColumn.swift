/// QuickScorer's inner loop (VigilCore/QuickScorer.swift, `run`) for one split list of a block
/// of 16 rows with 32-bit leaf bitvectors, compiled for AVX2: a tree's bitvectors for the block
/// are 64 bytes, two 256-bit registers, where the baseline build needs four 128-bit ones per
/// load, OR, AND and store. The same steps as the generic kernel there, which stays the path for
/// 64-bit bitvectors and for CPUs without AVX2; QuickScorerTests run both on this CPU's path and
/// the generic one through the reference comparison.
package enum QuickScorerColumn {
    /// One list of a block. `table[rowRanks[i]]` is how many of the list's splits (entries
    /// `start..<start + count`, thresholds ascending) fail for row i; each failing entry e ANDs
    /// `masks[e]` into lane i of the bitvectors at `bits + entrySlot[e]`. Rows in `missingLanes`
    /// then fail the entries `missStart..<missStart + missCount` too (one lane at a time when
    /// they are at most `scalarMissingLanes`). `ends` and `endingLanes` are the caller's
    /// all-zero scratch (a bit per prefix length, and the lanes per length), left all zero.
    @inline(never)
    package static func apply16(
        bits: UnsafeMutableRawPointer, entrySlot: UnsafePointer<UInt32>, masks: UnsafePointer<UInt32>,
        start base: Int, count: Int, table: UnsafePointer<Int32>, rowRanks: UnsafePointer<Int32>,
        missStart: Int, missCount: Int, missingLanes: UInt32, scalarMissingLanes: Int,
        ends: UnsafeMutablePointer<UInt64>, endingLanes: UnsafeMutablePointer<UInt32>
    ) {
        typealias V = SIMD16<UInt32>
        let laneBit = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        let signShift = SIMD16<Int32>(repeating: 31)
        var shortest = count, longest = 0
        for i in 0..<16 {
            let q = Int(table[Int(rowRanks[i])])
            shortest = min(shortest, q)
            longest = max(longest, q)
            ends[q &>> 6] |= 1 &<< UInt64(q & 63)
            endingLanes[q] |= 1 &<< UInt32(i)
        }
        // Every lane's test fails.
        var e = base
        let allEnd = base &+ shortest
        while e < allEnd {
            let slot = bits + Int(entrySlot[e])
            slot.storeBytes(of: slot.load(as: V.self) & V(repeating: masks[e]), as: V.self)
            e &+= 1
        }
        // Runs between consecutive prefix lengths: the lanes with a longer prefix fail.
        var done = shortest
        var passedLanes: UInt32 = 0
        while true {
            passedLanes |= endingLanes[done]
            endingLanes[done] = 0
            ends[done &>> 6] &= ~(1 &<< UInt64(done & 63))
            if done == longest { break }
            var w = done &>> 6
            while ends[w] == 0 { w &+= 1 }
            let next = w &<< 6 &+ ends[w].trailingZeroBitCount
            // All ones in the lanes that passed (their bitvectors keep every bit), zero elsewhere.
            let other = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: ~passedLanes)) & laneBit
            let keep = unsafeBitCast((other &- SIMD16(repeating: 1)) &>> signShift, to: V.self)
            let runEnd = base &+ next
            while e < runEnd {
                let slot = bits + Int(entrySlot[e])
                slot.storeBytes(of: slot.load(as: V.self) & (V(repeating: masks[e]) | keep), as: V.self)
                e &+= 1
            }
            done = next
        }
        guard missingLanes != 0, missCount > 0 else { return }
        let missEnd = missStart &+ missCount
        if missingLanes.nonzeroBitCount <= scalarMissingLanes {
            var left = missingLanes
            while left != 0 {
                let lane = bits + left.trailingZeroBitCount &* 4
                left &= left &- 1
                var m = missStart
                while m < missEnd {
                    let slot = lane + Int(entrySlot[m])
                    slot.storeBytes(of: slot.load(as: UInt32.self) & masks[m], as: UInt32.self)
                    m &+= 1
                }
            }
        } else {
            let other = SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: missingLanes)) & laneBit
            let keep = unsafeBitCast((other &- SIMD16(repeating: 1)) &>> signShift, to: V.self)
            var m = missStart
            while m < missEnd {
                let slot = bits + Int(entrySlot[m])
                slot.storeBytes(of: slot.load(as: V.self) & (V(repeating: masks[m]) | keep), as: V.self)
                m &+= 1
            }
        }
    }
}

extension QuickScorerColumn {
    /// Exit leaves of a chunk's trees for a 16-row block, summed per row in tree order: for tree
    /// t, lane i's leaf is the lowest set bit of its bitvector (one `tzcnt` here), and
    /// `acc[outputs[firstTree + t]][i] += leafValues[leafStart[firstTree + t] + leaf]`.
    @inline(never)
    package static func exitLeaves16(
        bits: UnsafeRawPointer, trees: Int, firstTree: Int, leafStart: UnsafePointer<Int32>, outputs: UnsafePointer<Int32>,
        leafValues: UnsafePointer<Double>, acc: UnsafeMutablePointer<SIMD16<Double>>
    ) {
        sumExitLeaves(bits: bits, trees: trees, firstTree: firstTree, leafStart: leafStart, outputs: outputs, leafValues: leafValues, acc: acc)
    }

    /// `exitLeaves16` with float32 leaves and sums (`InputPrecision.float32`).
    @inline(never)
    package static func exitLeaves16(
        bits: UnsafeRawPointer, trees: Int, firstTree: Int, leafStart: UnsafePointer<Int32>, outputs: UnsafePointer<Int32>,
        leafValues: UnsafePointer<Float>, acc: UnsafeMutablePointer<SIMD16<Float>>
    ) {
        sumExitLeaves(bits: bits, trees: trees, firstTree: firstTree, leafStart: leafStart, outputs: outputs, leafValues: leafValues, acc: acc)
    }

    /// The body of both `exitLeaves16`: generic, but specialised here (it is not visible outside
    /// this module), so both entry points are compiled for AVX2.
    @inline(__always)
    private static func sumExitLeaves<T: BinaryFloatingPoint & SIMDScalar>(
        bits: UnsafeRawPointer, trees: Int, firstTree: Int, leafStart: UnsafePointer<Int32>, outputs: UnsafePointer<Int32>,
        leafValues: UnsafePointer<T>, acc: UnsafeMutablePointer<SIMD16<T>>
    ) {
        for t in 0..<trees {
            let b = bits.load(fromByteOffset: t &* 64, as: SIMD16<UInt32>.self)
            let leaves = leafValues + Int(leafStart[firstTree &+ t])
            var v = SIMD16<T>()
            for i in 0..<16 { v[i] = leaves[b[i].trailingZeroBitCount] }
            acc[Int(outputs[firstTree &+ t])] += v
        }
    }
}
