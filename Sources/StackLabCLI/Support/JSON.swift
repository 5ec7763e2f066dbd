import Foundation
import Manifests

/// JSON output shared by commands: sorted keys, pretty printed, one trailing newline.
public enum JSON {
    public static func encode(_ value: some Encodable, files: SourceFiles? = nil) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let files { encoder.userInfo[.sourceFiles] = files }
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }
}

/// A diagnostic as JSON: severity, message, file, line, column, hint.
struct DiagnosticRecord: Encodable {
    var severity: Diagnostic.Severity
    var message: String
    var file: String?
    var line: Int32?
    var column: Int32?
    var hint: String?

    init(_ diagnostic: Diagnostic, files: SourceFiles) {
        severity = diagnostic.severity
        message = diagnostic.message
        hint = diagnostic.hint
        if let location = diagnostic.location {
            file = files[location.file].path
            line = location.line
            column = location.column
        }
    }
}
