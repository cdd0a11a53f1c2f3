import ModelIR

/// Where each tensor lives while the model runs: the caller's input and
/// output buffers, the weights blob, or an offset in one static arena
/// planned from liveness at compile time.
struct MemoryPlan {
    enum Storage: Equatable {
        case input(Int)
        case output(Int)
        case weight(offset: Int)
        case arena(offset: Int)
    }

    static let alignment = 64

    var storage: [ValueID: Storage] = [:]
    var arenaBytes = 0
    var weightsBytes = 0
    /// Constants in the weights blob, in blob order.
    var weights: [(id: ValueID, offset: Int)] = []
    /// Graph outputs that are not computed into their buffer by a node (inputs,
    /// constants, or outputs listed twice): copied in at the end.
    var finalCopies: [(output: Int, source: ValueID)] = []

    init(graph: Graph) {
        for (index, id) in graph.inputs.enumerated() { storage[id] = .input(index) }
        var used: Set<ValueID> = []
        for node in graph.nodes { used.formUnion(node.reads) }
        used.formUnion(graph.outputs)
        for id in graph.initializers.keys.sorted() where used.contains(id) {
            let offset = Self.align(weightsBytes)
            storage[id] = .weight(offset: offset)
            weights.append((id, offset))
            weightsBytes = offset + graph.initializers[id]!.storage.count
        }
        for (index, id) in graph.outputs.enumerated() {
            if storage[id] == nil {
                storage[id] = .output(index)
            } else {
                finalCopies.append((index, id))
            }
        }

        var lastUse: [ValueID: Int] = [:]
        for (index, node) in graph.nodes.enumerated() { for id in node.reads { lastUse[id] = index } }
        var free: [(offset: Int, size: Int)] = []
        for (index, node) in graph.nodes.enumerated() {
            for case let id? in node.outputs where storage[id] == nil {
                let size = Self.align(Self.bytes(graph[id]))
                storage[id] = .arena(offset: allocate(size, &free))
                if lastUse[id] == nil { lastUse[id] = index }
            }
            // Once per value: a node may read one value twice (Mul(x, x), a Conv whose residual is its input),
            // and freeing its block twice would hand it to two live tensors.
            for id in Set(node.reads + node.outputs.compactMap({ $0 })) where lastUse[id] == index {
                if case .arena(let offset)? = storage[id] { release(offset, Self.align(Self.bytes(graph[id])), &free) }
            }
        }
    }

    static func align(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }

    static func bytes(_ value: Value) -> Int {
        guard let type = value.type, let shape = type.staticShape else { return 0 }
        return (elementCount(shape) ?? 0) * (type.dataType.byteSize ?? 1)
    }

    private mutating func allocate(_ size: Int, _ free: inout [(offset: Int, size: Int)]) -> Int {
        if let slot = free.firstIndex(where: { $0.size >= size }) {
            let offset = free[slot].offset
            if free[slot].size == size {
                free.remove(at: slot)
            } else {
                free[slot] = (offset + size, free[slot].size - size)
            }
            return offset
        }
        let offset = arenaBytes
        arenaBytes += size
        return offset
    }

    private func release(_ offset: Int, _ size: Int, _ free: inout [(offset: Int, size: Int)]) {
        guard size > 0 else { return }
        free.append((offset, size))
        free.sort { $0.offset < $1.offset }
        // Merge neighbours so large tensors can reuse space freed in pieces.
        var merged: [(offset: Int, size: Int)] = []
        for block in free {
            if let last = merged.last, last.offset + last.size == block.offset {
                merged[merged.count - 1].size += block.size
            } else {
                merged.append(block)
            }
        }
        free = merged
    }
}
