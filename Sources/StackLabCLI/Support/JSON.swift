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
