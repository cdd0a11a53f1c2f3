import Diagnostics

/// Shape rules for selection, rearranging, sampling and signal ops.
extension ShapeRules {
    static func topK(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard !x.isEmpty else { throw c.fail("cannot select from a scalar") }
        let axis = try c.axis(c.node.int("axis") ?? -1, rank: x.count)
        let k = c.opset >= 10 ? try c.requiredValue(1, "K").first ?? -1 : c.node.int("k") ?? -1
        guard k >= 0, k <= x[axis] else { throw c.fail("K = \(k) is outside 0...\(x[axis])") }
        var shape = x
        shape[axis] = k
        return [InferredOutput(c.dataType(0), shape), InferredOutput(.int64, shape)]
    }

    static func gatherND(_ c: ShapeContext) throws -> [InferredOutput] {
        let data = c.shape(0)
        let indices = c.shape(1)
        let batchDims = c.node.int("batch_dims") ?? 0
        guard let last = indices.last, indices.count >= 1, batchDims >= 0, batchDims < min(data.count, indices.count),
            batchDims + last <= data.count, Array(data[..<batchDims]) == Array(indices[..<batchDims])
        else {
            throw c.fail(
                "indices \(shapeText(indices)) do not index data \(shapeText(data)) with batch_dims \(batchDims)")
        }
        return [InferredOutput(c.dataType(0), Array(indices.dropLast()) + Array(data[(batchDims + last)...]))]
    }

    static func depthToSpace(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let block = c.node.int("blocksize") ?? 0
        guard x.count == 4, block > 0, x[1] % (block * block) == 0 else {
            throw c.fail("needs a 4-D input whose channels divide by blocksize² (got \(shapeText(x)), \(block))")
        }
        return [InferredOutput(c.dataType(0), [x[0], x[1] / (block * block), x[2] * block, x[3] * block])]
    }

    static func spaceToDepth(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let block = c.node.int("blocksize") ?? 0
        guard x.count == 4, block > 0, x[2] % block == 0, x[3] % block == 0 else {
            throw c.fail("needs a 4-D input whose height and width divide by blocksize (got \(shapeText(x)), \(block))")
        }
        return [InferredOutput(c.dataType(0), [x[0], x[1] * block * block, x[2] / block, x[3] / block])]
    }

    static func det(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard x.count >= 2, x[x.count - 1] == x[x.count - 2] else {
            throw c.fail("needs square matrices in the last two axes (got \(shapeText(x)))")
        }
        return [InferredOutput(c.dataType(0), Array(x.dropLast(2)))]
    }

    static func maxUnpool(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard x.count >= 3, let kernel = c.node.ints("kernel_shape"), kernel.count == x.count - 2 else {
            throw c.fail("needs an input of rank ≥ 3 and a kernel_shape for each spatial axis")
        }
        if c.has(2) {
            let shape = try c.requiredValue(2, "output_shape")
            guard shape.count == x.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw c.fail("output_shape \(shapeText(shape)) does not fit input \(shapeText(x))")
            }
            return [InferredOutput(c.dataType(0), shape)]
        }
        let spatial = kernel.count
        let strides = c.node.ints("strides") ?? Array(repeating: 1, count: spatial)
        let pads = c.node.ints("pads") ?? Array(repeating: 0, count: spatial * 2)
        let dims = (0..<spatial).map { (x[$0 + 2] - 1) * strides[$0] + kernel[$0] - pads[$0] - pads[$0 + spatial] }
        guard dims.allSatisfy({ $0 > 0 }) else { throw c.fail("the output would be empty") }
        return [InferredOutput(c.dataType(0), [x[0], x[1]] + dims)]
    }

    static func oneHot(_ c: ShapeContext) throws -> [InferredOutput] {
        let indices = c.shape(0)
        // depth may be a float tensor: take a constant one's value whatever its type.
        let constantDepth = c.inputConstants.count > 1 ? c.inputConstants[1]?.doubles()?.first : nil
        let depthValue = try constantDepth.map { Int($0) } ?? c.requiredValue(1, "depth").first
        guard let depth = depthValue, depth > 0 else {
            throw c.fail("depth must be positive")
        }
        let axis = try c.axis(c.node.int("axis") ?? -1, rank: indices.count + 1)
        var shape = indices
        shape.insert(depth, at: axis)
        return [InferredOutput(c.dataType(2), shape)]
    }

    static func window(_ c: ShapeContext) throws -> [InferredOutput] {
        guard let size = try c.requiredValue(0, "size").first, size >= 0 else {
            throw c.fail("size must not be negative")
        }
        let type = c.node.int("output_datatype").flatMap { DataType(rawValue: Int32(truncatingIfNeeded: $0)) }
        return [InferredOutput(type ?? .float32, [size])]
    }

    static func centerCropPad(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let target = try c.requiredValue(1, "shape")
        let axes = try (c.node.ints("axes") ?? Array(x.indices)).map { try c.axis($0, rank: x.count) }
        guard target.count == axes.count, target.allSatisfy({ $0 >= 0 }) else {
            throw c.fail("shape \(shapeText(target)) does not match axes \(shapeText(axes))")
        }
        var shape = x
        for (axis, size) in zip(axes, target) { shape[axis] = size }
        return [InferredOutput(c.dataType(0), shape)]
    }

    static func gridSample(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let grid = c.shape(1)
        guard x.count >= 4, grid.count == x.count, grid[0] == x[0], grid.last == x.count - 2 else {
            throw c.fail("grid \(shapeText(grid)) does not sample input \(shapeText(x))")
        }
        return [InferredOutput(c.dataType(0), [x[0], x[1]] + Array(grid[1..<(grid.count - 1)]))]
    }

    /// Einsum: the output's letters with the sizes the operands give them.
    static func einsum(_ c: ShapeContext) throws -> [InferredOutput] {
        let equation = try EinsumEquation(c.node.string("equation") ?? "", shapes: (0..<c.inputCount).map(c.shape))
        return [InferredOutput(c.dataType(0), equation.output.map { equation.sizes[$0]! })]
    }
}

/// A parsed Einsum equation with the ellipsis expanded into letters of its own.
public struct EinsumEquation: Sendable {
    /// Each operand's subscripts, one letter per axis.
    public var operands: [[Character]]
    public var output: [Character]
    /// Every letter's size (broadcast over the operands).
    public var sizes: [Character: Int]
    /// The letters summed over.
    public var summed: [Character]

    public init(_ text: String, shapes: [[Int]]) throws {
        func fail(_ why: String) -> KilnError {
            .client(.modelCheck, "Einsum equation \(quoted(text)): \(why)")
        }
        let compact = text.filter { !$0.isWhitespace }
        let sides = compact.pieces(between: "->")
        guard sides.count <= 2 else { throw fail("more than one '->'") }
        let inputs = sides[0].pieces(between: ",")
        guard inputs.count == shapes.count else {
            throw fail("names \(inputs.count) operands but the node has \(shapes.count)")
        }
        // Letters outside a-zA-Z stand for the ellipsis' axes.
        let ellipsisLetters: [Character] = (0..<16).map { Character(UnicodeScalar(0x3B1 + $0)!) }
        var ellipsisRank = 0
        var parsed: [[Character]] = []
        for (term, shape) in zip(inputs, shapes) {
            let parts = term.pieces(between: "...")
            guard parts.count <= 2, term.allSatisfy({ $0.isLetter || $0 == "." }) else {
                throw fail("operand \(quoted(term)) is not letters with at most one '...'")
            }
            let named = parts.joined().count
            guard parts.count == 2 ? named <= shape.count : named == shape.count else {
                throw fail("operand \(quoted(term)) does not match its rank \(shape.count)")
            }
            var letters = Array(parts[0])
            if parts.count == 2 {
                let rank = shape.count - named
                guard rank <= ellipsisLetters.count else { throw fail("the ellipsis covers too many axes") }
                ellipsisRank = max(ellipsisRank, rank)
                letters += ellipsisLetters[(ellipsisLetters.count - rank)...].map { $0 }
                letters += Array(parts[1])
            }
            parsed.append(letters)
        }
        // Ellipsis axes align to the right, as NumPy broadcasting does.
        let ellipsis = Array(ellipsisLetters[(ellipsisLetters.count - ellipsisRank)...])
        var sizes: [Character: Int] = [:]
        for (letters, shape) in zip(parsed, shapes) {
            var seen: [Character: Int] = [:]
            for (letter, size) in zip(letters, shape) {
                if let earlier = seen[letter], earlier != size {
                    throw fail("letter \(letter) has sizes \(earlier) and \(size) in one operand")
                }
                seen[letter] = size
                switch sizes[letter] {
                case nil, 1?: sizes[letter] = size
                case let other? where other != size && size != 1:
                    throw fail("letter \(letter) has sizes \(other) and \(size)")
                default: break
                }
            }
        }
        var output: [Character]
        if sides.count == 2 {
            let parts = sides[1].pieces(between: "...")
            guard parts.count <= 2, sides[1].allSatisfy({ $0.isLetter || $0 == "." }) else {
                throw fail("the output \(quoted(sides[1])) is not letters with at most one '...'")
            }
            output = Array(parts[0]) + (parts.count == 2 ? ellipsis + Array(parts[1]) : [])
            for letter in output where sizes[letter] == nil {
                throw fail("output letter \(letter) appears in no operand")
            }
            guard Set(output).count == output.count else { throw fail("the output repeats a letter") }
        } else {
            // Implicit output: the ellipsis, then the letters used once, in alphabetical order.
            var counts: [Character: Int] = [:]
            for letters in parsed { for letter in letters where letter.isASCII { counts[letter, default: 0] += 1 } }
            output = ellipsis + counts.filter { $0.value == 1 }.keys.sorted()
        }
        operands = parsed
        self.output = output
        self.sizes = sizes
        var summed: [Character] = []
        for letters in parsed {
            for letter in letters where !output.contains(letter) && !summed.contains(letter) { summed.append(letter) }
        }
        self.summed = summed
    }
}

extension String {
    /// The pieces between occurrences of `separator` (empty pieces kept), like Foundation's components(separatedBy:).
    fileprivate func pieces(between separator: String) -> [String] {
        var result: [String] = []
        var current = Substring(self)
        while let range = current.firstRange(of: separator) {
            result.append(String(current[..<range.lowerBound]))
            current = current[range.upperBound...]
        }
        result.append(String(current))
        return result
    }
}
