import Foundation
import Pipelines
import Reconcile

/// JUnit XML (what Jenkins reads): a test suite per change, a test case per pipeline step.
enum JUnit {
    static func report(name: String, suites: [(name: String, timestamp: Date, steps: [PipelineRunner.StepResult])]) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate]
        let all = suites.flatMap(\.steps)
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"\(escape(name))\" tests=\"\(all.count)\" failures=\"\(all.count { $0.status == .failed })\" errors=\"0\" time=\"\(seconds(all.reduce(0) { $0 + $1.seconds }))\">\n"
        for (index, suite) in suites.enumerated() {
            let failures = suite.steps.count { $0.status == .failed }
            let skipped = suite.steps.count { [.skipped, .pending, .running].contains($0.status) }
            xml += "  <testsuite name=\"\(escape(suite.name))\" id=\"\(index)\" package=\"stacklab\" hostname=\"\(escape(ProcessInfo.processInfo.hostName))\" tests=\"\(suite.steps.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"\(skipped)\" time=\"\(seconds(suite.steps.reduce(0) { $0 + $1.seconds }))\" timestamp=\"\(formatter.string(from: suite.timestamp).prefix(19))\">\n"
            xml += "    <properties/>\n"
            for step in suite.steps {
                xml += "    <testcase name=\"\(escape(step.name))\" classname=\"stacklab.\(escape(name.replacingOccurrences(of: " ", with: ".")))\" time=\"\(seconds(step.seconds))\""
                switch step.status {
                case .passed:
                    xml += step.log.isEmpty ? "/>\n" : ">\n      <system-out>\(escape(step.message + "\n" + step.log))</system-out>\n    </testcase>\n"
                case .skipped, .pending, .running:
                    let why = step.status == .skipped ? step.message : "not finished (\(step.status.rawValue)) \(step.message)"
                    xml += ">\n      <skipped message=\"\(escape(why))\"/>\n    </testcase>\n"
                case .failed:
                    xml += ">\n      <failure message=\"\(escape(step.message))\" type=\"StepFailed\">\(escape(step.log))</failure>\n    </testcase>\n"
                }
            }
            xml += "    <system-out/>\n    <system-err/>\n  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }

    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            default: if scalar.value >= 0x20 { out.unicodeScalars.append(scalar) }  // XML 1.0 forbids other controls
            }
        }
        return out
    }
}
