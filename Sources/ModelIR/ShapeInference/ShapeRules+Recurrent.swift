/// Shape rules of LSTM, GRU and RNN (Y holds every step's hidden state, Y_h and LSTM's Y_c the last), and of
/// the Select an inlined If ends in.
extension ShapeRules {
    static func addRecurrentRules(_ table: inout [String: ShapeRule]) {
        for op in ["LSTM", "GRU", "RNN"] { table[op] = recurrent }
        // An inlined If's output: both branches must give one static type and shape.
        table["kiln::Select"] = { c in
            guard c.shape(1) == c.shape(2), c.dataType(1) == c.dataType(2) else {
                throw c.fail(
                    "the If's branches give \(c.dataType(1).name)\(shapeText(c.shape(1))) and "
                        + "\(c.dataType(2).name)\(shapeText(c.shape(2))) for one output; Kiln compiles one static shape per output"
                )
            }
            return [InferredOutput(c.dataType(1), c.shape(1))]
        }
    }

    static func recurrent(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard x.count == 3, c.has(2), c.shape(2).count == 3 else {
            throw c.fail("X must be [steps, batch, input] and R [directions, gates × hidden, hidden]")
        }
        let batchMajor = (c.node.int("layout") ?? 0) == 1
        let (steps, batch) = batchMajor ? (x[1], x[0]) : (x[0], x[1])
        let hidden = c.node.int("hidden_size") ?? c.shape(2)[2]
        let directions = (c.node.string("direction") ?? "forward") == "bidirectional" ? 2 : 1
        let type = c.dataType(0)
        let y = batchMajor ? [batch, steps, directions, hidden] : [steps, directions, batch, hidden]
        let state = batchMajor ? [batch, directions, hidden] : [directions, batch, hidden]
        return [InferredOutput(type, y), InferredOutput(type, state), InferredOutput(type, state)]
    }
}
