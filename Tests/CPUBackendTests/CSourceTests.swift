import Testing

@testable import CPUBackend

@Suite("model strings in generated C")
struct CSourceTests {
    @Test("string literals escape quotes, backslashes, comment markers, trigraphs and non-ASCII bytes")
    func literals() {
        #expect(CSource.stringLiteral(#"a"b\c"#) == #""a\042b\134c""#)
        #expect(CSource.stringLiteral("*/ ??= é\n") == "\"*/ \\077\\077= \\303\\251\\012\"")
    }

    @Test("comments cannot be closed or nested by model text")
    func comments() {
        #expect(!CSource.comment("evil */ int x; /*").contains("*/"))
        #expect(!CSource.comment("evil */ int x; /*").contains("/*"))
        #expect(CSource.comment("ends with *") == "ends with * ")
        #expect(CSource.comment("new\nline") == "new?line")
    }

    @Test("floats are written exactly")
    func floats() {
        #expect(CSource.float(0.1) == "0x1.99999ap-4f")
        #expect(CSource.float(.infinity) == "(1.0f/0.0f)")
    }
}
