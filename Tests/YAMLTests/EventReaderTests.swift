import Testing
@testable import YAML

@Suite struct EventReaderTests {
    private func events(_ text: String, budget: Int = 100_000) throws(YAMLError) -> [Event] {
        let reader = EventReader(bytes: Array(text.utf8), aliasBudget: budget)
        var all: [Event] = []
        while true {
            let event = try reader.next()
            all.append(event)
            if event.kind == .streamEnd { return all }
        }
    }

    @Test func marksAreOneBasedLineAndColumn() throws {
        let all = try events("a: 1\nlist:\n  - x\n")
        let x = try #require(all.first { $0.kind == .scalar && $0.value == "x" })
        #expect(x.mark == Mark(line: 3, column: 5))
        let a = try #require(all.first { $0.value == "a" })
        #expect(a.mark == Mark(line: 1, column: 1))
    }

    @Test func scalarStylesAreKept() throws {
        let all = try events("a: plain\nb: 'single'\nc: \"double\"\nd: |\n  literal\n")
        let styles = all.filter { $0.kind == .scalar }.map(\.style)
        #expect(styles == [.plain, .plain, .plain, .singleQuoted, .plain, .doubleQuoted, .plain, .literal])
    }

    @Test func aliasesReplayTheAnchoredNode() throws {
        let all = try events("base: &b {x: 1, y: [2, 3]}\ncopy: *b\n")
        let values = all.filter { $0.kind == .scalar }.map(\.value)
        #expect(values == ["base", "x", "1", "y", "2", "3", "copy", "x", "1", "y", "2", "3"])
    }

    @Test func scalarAliases() throws {
        let all = try events("a: &v hello\nb: *v\n")
        #expect(all.filter { $0.kind == .scalar }.map(\.value) == ["a", "hello", "b", "hello"])
    }

    @Test func anUnknownAliasIsAnError() {
        #expect(throws: YAMLError.self) { try events("a: *nowhere\n") }
    }

    @Test func aBillionLaughsIsRefusedEarly() throws {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            text += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        do {
            _ = try events(text, budget: 10_000)
            Issue.record("an alias bomb must be refused")
        } catch {
            #expect(error.message.contains("aliases expand to more than 10000"))
            #expect(error.mark.line <= 5)
        }
    }

    @Test func captureAndReplayRoundTrip() throws {
        let reader = EventReader(bytes: Array("spec: {a: 1}\nkind: X\n".utf8))
        _ = try reader.next()  // stream
        _ = try reader.next()  // document
        _ = try reader.next()  // mapping
        _ = try reader.next()  // "spec"
        let captured = try reader.captureNode()
        #expect(captured.count == 4)
        #expect(try reader.next().value == "kind")
        reader.replay(captured)
        #expect(try reader.next().kind == .mappingStart)
        #expect(try reader.next().value == "a")
        #expect(try reader.next().value == "1")
        #expect(try reader.next().kind == .mappingEnd)
        #expect(try reader.next().value == "X")
    }

    @Test func syntaxErrorsCarryLibyamlsMessageAndMark() {
        do {
            _ = try events("a: [1, 2\nb: 3\n")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.message.contains("flow sequence"))
            #expect(error.mark.line == 2)
        }
    }

    @Test func invalidUTF8PointsAtTheBadByte() {
        do {
            var bytes = Array("a: ok\nb: caf".utf8)
            bytes.append(0xE9)
            bytes += Array(" x\n".utf8)
            _ = try EventReader(bytes: bytes).skipAll()
            Issue.record("expected an encoding error")
        } catch {
            #expect(error.message.contains("0xE9"))
            #expect(error.mark == Mark(line: 2, column: 7))
        }
    }
}

extension EventReader {
    func skipAll() throws(YAMLError) {
        while try next().kind != .streamEnd {}
    }
}
