import Foundation
import Testing

/// The module graph as `docs/architecture.md` draws it: read from `Package.swift` (targets, their dependencies,
/// products) and from the sources' imports, checked against the layer table.
@Suite struct LayeringTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { url.deleteLastPathComponent() }
        return url.path
    }()

    /// A target of the package: kind (target, executableTarget, testTarget, systemLibrary), name, the targets it
    /// depends on (products of other packages left out).
    struct Target {
        var kind: String
        var name: String
        var dependencies: [String]
        var directory: String { "\(kind == "testTarget" ? "Tests" : "Sources")/\(name)" }
    }

    /// The text inside the brackets that open at `start` (which is on the opening bracket), balanced, strings skipped.
    static func enclosed(_ text: [Character], from start: Int) -> (body: String, end: Int) {
        let open = text[start], close: Character = open == "(" ? ")" : "]"
        var depth = 0, index = start, inString = false
        while index < text.count {
            let character = text[index]
            if character == "\"" { inString.toggle() } else if !inString {
                if character == open { depth += 1 } else if character == close {
                    depth -= 1
                    if depth == 0 { return (String(text[(start + 1)..<index]), index) }
                }
            }
            index += 1
        }
        return (String(text[(start + 1)...]), text.count)
    }

    static func manifest() throws -> (targets: [String: Target], products: [String: [String]]) {
        let text = Array(try String(contentsOfFile: "\(root)/Package.swift", encoding: .utf8))
        let source = String(text)
        var targets: [String: Target] = [:], products: [String: [String]] = [:]
        let declaration = try Regex(#"\.(target|executableTarget|testTarget|systemLibrary|executable|library)\("#)
        for match in source.matches(of: declaration) {
            let kind = String(match.output[1].substring ?? "")
            let start = source.distance(from: source.startIndex, to: match.range.upperBound) - 1
            let body = enclosed(text, from: start).body
            guard let name = body.firstMatch(of: #/name: "([^"]+)"/#)?.output.1 else { continue }
            if kind == "executable" || kind == "library" {
                let list = body.firstMatch(of: #/targets: \[([^\]]*)\]/#)?.output.1 ?? ""
                products[String(name)] = list.matches(of: #/"([^"]+)"/#).map { String($0.output.1) }
                continue
            }
            var dependencies: [String] = []
            if let range = body.range(of: "dependencies: [") {
                let characters = Array(body)
                let offset = body.distance(from: body.startIndex, to: range.upperBound) - 1
                // Products of other packages (.product(name:package:)) are outside the layering.
                let list = enclosed(characters, from: offset).body.replacing(#/\.product\([^)]*\)/#, with: "")
                dependencies = list.matches(of: #/"([^"]+)"/#).map { String($0.output.1) }
            }
            targets[String(name)] = Target(kind: kind, name: String(name), dependencies: dependencies)
        }
        return (targets, products)
    }

    /// The layer table: each module's (row, position); row 0 is the bottom.
    static func layers() throws -> [String: (row: Int, position: Int, layer: String)] {
        let text = try String(contentsOfFile: "\(root)/docs/architecture.md", encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| Layer") }
        var table: [String: (row: Int, position: Int, layer: String)] = [:]
        for (index, line) in rows.reversed().enumerated() {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2 else { continue }
            for (position, match) in cells[1].matches(of: #/`([A-Za-z-]+)`/#).enumerated() {
                table[String(match.output.1)] = (index, position, cells[0])
            }
        }
        return table
    }

    @Test func everyEdgeOfTheModuleGraphPointsDown() throws {
        let (targets, _) = try Self.manifest()
        let layers = try Self.layers()
        #expect(targets.count > 30, "Package.swift read: \(targets.keys.sorted())")
        var wrong: [String] = []
        for target in targets.values.sorted(by: { $0.name < $1.name }) where target.kind == "target" || target.kind == "executableTarget" {
            guard let from = layers[target.name] else {
                wrong.append("\(target.name) is in no layer of docs/architecture.md")
                continue
            }
            for dependency in target.dependencies where targets[dependency]?.kind != "systemLibrary" {
                guard let to = layers[dependency] else { wrong.append("\(dependency) is in no layer"); continue }
                let down = to.row < from.row || (to.row == from.row && to.position < from.position)
                if !down { wrong.append("\(target.name) (\(from.layer)) → \(dependency) (\(to.layer)) points \(to.row == from.row ? "sideways" : "up")") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "\n"))")
    }

    @Test func everyImportIsADeclaredDependency() throws {
        let (targets, _) = try Self.manifest()
        var undeclared: [String] = []
        for target in targets.values where target.kind != "systemLibrary" {
            let directory = "\(Self.root)/\(target.directory)"
            guard let files = FileManager.default.enumerator(atPath: directory) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)
                for match in text.matches(of: #/(?m)^(?:@testable )?import (\w+)$/#) {
                    let module = String(match.output.1)
                    if let imported = targets[module], imported.name != target.name, imported.kind != "systemLibrary",
                       !target.dependencies.contains(module) {
                        undeclared.append("\(target.directory)/\(file) imports \(module), which \(target.name) does not declare")
                    }
                }
            }
        }
        #expect(undeclared.isEmpty, "\(undeclared.sorted().joined(separator: "\n"))")
    }

    @Test func onlyTheBenchmarksAndTheTestsLinkTestTooling() throws {
        let (targets, products) = try Self.manifest()
        func closure(_ name: String) -> Set<String> {
            var seen: Set<String> = [], queue = [name]
            while let next = queue.popLast() {
                guard seen.insert(next).inserted else { continue }
                queue += targets[next]?.dependencies ?? []
            }
            return seen
        }
        #expect(products["stacklab"] == ["stacklab"], "\(products)")
        for (product, roots) in products where product != "stacklab-bench" {
            let linked = roots.reduce(into: Set<String>()) { $0.formUnion(closure($1)) }
            #expect(!linked.contains("TestSupport"), "\(product) links TestSupport")
        }
        #expect(closure("stacklab").isDisjoint(with: ["TestSupport", "StackLabBench", "StackLabFaults"]))
        #expect(closure("StackLabBench").contains("TestSupport"), "the parser follows edges")
    }

    /// The programs read the environment (the CLI once, in `ProcessEnvironment`); no library does: what a library
    /// needs from it (an SSH key, a database URL, object-store keys) is passed down.
    @Test func noLibraryReadsTheEnvironment() throws {
        let programs: Set<String> = ["StackLabCLI", "stacklab", "StackLabBench", "StackLabFaults", "TestSupport"]
        var readers: [String] = []
        let sources = "\(Self.root)/Sources"
        for module in try FileManager.default.contentsOfDirectory(atPath: sources) where !programs.contains(module) {
            let enumerator = FileManager.default.enumerator(atPath: "\(sources)/\(module)")
            while let path = enumerator?.nextObject() as? String {
                guard path.hasSuffix(".swift"), let text = try? String(contentsOfFile: "\(sources)/\(module)/\(path)", encoding: .utf8) else { continue }
                for (number, line) in text.components(separatedBy: "\n").enumerated()
                where line.contains("processInfo.environment") || line.contains("getenv(") || line.contains("secure_getenv(") {
                    readers.append("Sources/\(module)/\(path):\(number + 1)")
                }
            }
        }
        #expect(readers.isEmpty, "\(readers.joined(separator: "\n"))")
        let cli = try String(contentsOfFile: "\(sources)/StackLabCLI/Support/GlobalOptions.swift", encoding: .utf8)
        #expect(cli.contains("ProcessInfo.processInfo.environment"), "the CLI reads it in one place")
    }
}
