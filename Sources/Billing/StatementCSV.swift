import Manifests

extension Statement {
    /// The line items as CSV rows (no header), for a spreadsheet: a cell that a spreadsheet would run as a formula
    /// (starting with `=`, `+`, `-` or `@`) is neutralised with a leading `'`.
    public var csvRows: String {
        lines.map { line in
            [tenant, month, line.category, line.address, line.item, "\(line.unitPrice)", line.unit, Calendar.UTC.format(line.start), Calendar.UTC.format(line.end),
             Self.quantity(line.quantityMicros), "\(line.total)"].map(Self.csvField).joined(separator: ",") + "\n"
        }.joined()
    }

    public static let csvHeader = "tenant,month,category,name,item,unit_price,unit,start,end,quantity,total\n"

    /// One cell: quoted when it holds a comma, a quote or a line break; neutralised when it would be a formula.
    public static func csvField(_ text: String) -> String {
        var cell = text
        if let first = cell.first, "=+-@".contains(first) { cell = "'" + cell }
        return cell.contains(",") || cell.contains("\"") || cell.contains("\n") || cell.contains("\r")
            ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
    }

    /// Periods in millionths as a number: `720`, `2.5`.
    public static func quantity(_ micros: Int64) -> String {
        micros % 1_000_000 == 0 ? "\(micros / 1_000_000)" : FixedPoint(units: micros, scale: 6).formatted(minimumFractionDigits: 1)
    }
}
