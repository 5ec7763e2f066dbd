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
        let label = diagnostic.severity == .error ? paint("error", "1;31") : paint("warning", "1;33")
        var out = ""
        if let location = diagnostic.location {
            out += paint(files.describe(location), "1") + ": "
        }
        out += "\(label): \(paint(diagnostic.message, "1"))\n"
        if let location = diagnostic.location, let line = files[location.file].line(location.line) {
            let number = String(location.line)
            let gutter = String(repeating: " ", count: number.count)
            let expanded = line.replacingTabs()
            let caretColumn = max(0, min(Int(location.column) - 1, expanded.count))
            out += " \(number) | \(expanded)\n"
            out += " \(gutter) | \(String(repeating: " ", count: caretColumn))\(paint("^", "1;32"))\n"
        }
        if let hint = diagnostic.hint {
            out += "  \(paint("hint", "1;36")): \(hint)\n"
        }
        return out
    }

    /// Every diagnostic followed by a summary line ("2 errors, 1 warning").
    public func render(_ diagnostics: [Diagnostic]) -> String {
        var out = diagnostics.map(render).joined(separator: "\n")
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
