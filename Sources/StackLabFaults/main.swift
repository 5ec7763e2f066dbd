import Foundation
import Reconcile
import StackLabCLI

// `stacklab-faults`: `stacklab` with faults a real node cannot produce injected into its node drivers, for the crash
// and pipeline tests (see `Faults`). Tooling, not product: only the tests run it.
do {
    let faults = try Faults(environment: ProcessInfo.processInfo.environment)
    if !faults.isEmpty { NodeDriverDecoration.install { faulty($0, faults) } }
} catch {
    FileHandle.standardError.write(Data("stacklab-faults: \(error)\n".utf8))
    exit(64)
}
await StackLab.run()
