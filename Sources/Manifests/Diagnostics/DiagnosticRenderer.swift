/// Prints diagnostics compiler-style: `path:line:col: error: message`, the offending line, a caret, a hint.
public struct DiagnosticRenderer: Sendable {
    /// The files the locations point into.
    public var files: SourceFiles
    /// Whether to use ANSI colours.
    public var colors: Bool

    /// Creates a renderer.
    public init(files: SourceFiles, colors: Bool = false) {
        self.files = files
        self.colors = colors
    }

    /// The text of one diagnostic, ending with a newline.
    public func render(_ diagnostic: Diagnostic) -> String {
        var lines: [FileID: SourceFile.Lines] = [:]
        return render(diagnostic, lines: &lines)
    }

    /// The text of one diagnostic; `lines` keeps each file's lines between calls (many diagnostics in one large file
    /// cost one pass over it, not one each).
    func render(_ diagnostic: Diagnostic, lines: inout [FileID: SourceFile.Lines]) -> String {
        let label = diagnostic.severity == .error ? paint("error", "1;31") : paint("warning", "1;33")
        var out = ""
        if let location = diagnostic.location {
            out += paint(files.describe(location).terminalSafe, "1") + ": "
        }
        out += "\(label): \(paint(diagnostic.message.terminalSafe, "1"))\n"
        if let location = diagnostic.location,
           let line = (lines[location.file] ?? { () -> SourceFile.Lines in
               let read = files[location.file].lines()
               lines[location.file] = read
               return read
           }()).line(location.line) {
            let number = String(location.line)
            let gutter = String(repeating: " ", count: number.count)
            let expanded = line.replacingTabs().terminalSafeAligned
            let caretColumn = max(0, min(Int(location.column) - 1, expanded.count))
            out += " \(number) | \(expanded)\n"
            out += " \(gutter) | \(String(repeating: " ", count: caretColumn))\(paint("^", "1;32"))\n"
        }
        if let hint = diagnostic.hint {
            out += "  \(paint("hint", "1;36")): \(hint.terminalSafe)\n"
        }
        return out
    }

    /// Every diagnostic followed by a summary line ("2 errors, 1 warning").
    public func render(_ diagnostics: [Diagnostic]) -> String {
        var lines: [FileID: SourceFile.Lines] = [:]
        var out = diagnostics.map { render($0, lines: &lines) }.joined(separator: "\n")
        let errors = diagnostics.count { $0.severity == .error }
        let warnings = diagnostics.count - errors
        if !diagnostics.isEmpty { out += "\n" }
        out += "\(errors) \(errors == 1 ? "error" : "errors"), \(warnings) \(warnings == 1 ? "warning" : "warnings")\n"
        return out
    }

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}

extension String {
    /// Tabs become single spaces so the caret lines up with libyaml's columns (which count a tab as one).
    fileprivate func replacingTabs() -> String {
        String(map { $0 == "\t" ? " " : $0 })
    }
}

extension String {
    /// The text with control characters shown instead of obeyed: C0 controls (newlines and tabs included), DEL and C1
    /// controls become `\u{1B}`-style escapes, so manifest text and file names can never drive the terminal (ESC
    /// sequences) or forge lines of output.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: Self.isControl) else { return self }
        var out = ""
        for scalar in unicodeScalars {
            if Self.isControl(scalar) { out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// Like `terminalSafe`, but line breaks stay line breaks (for messages of several lines that quote untrusted text):
    /// every other control character, carriage returns and ESC included, is shown as an escape.
    public var terminalSafeLines: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { String($0).terminalSafe }.joined(separator: "\n")
    }

    /// Like `terminalSafe`, but each control character becomes one replacement character, so columns stay aligned.
    var terminalSafeAligned: String {
        guard unicodeScalars.contains(where: Self.isControl) else { return self }
        return String(String.UnicodeScalarView(unicodeScalars.map { Self.isControl($0) ? "\u{FFFD}" : $0 }))
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
