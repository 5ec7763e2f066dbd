import ArgumentParser
import Dispatch
import Git
import Manifests
import Parallel
import StackLabCLI
import YAML

/// `stacklab-bench floor`: the least work any loader must do — read every manifest blob with libgit2 and run
/// libyaml's event parser over it — so `validate`'s time can be judged against it.
struct BenchFloor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "floor",
        abstract: "Read every manifest blob of a revision and parse it to YAML events, nothing more.")

    @Option(help: ArgumentHelp("The repository.", valueName: "dir"))
    var repo = "."

    @Option(help: ArgumentHelp("The revision.", valueName: "rev"))
    var rev = "HEAD"

    @Option(help: "Threads reading blobs and parsing.")
    var threads = 1

    func run() throws {
        let repository = try Repository(at: repo)
        let files = try repository.files(at: rev, under: ManifestLayout.roots, parallelism: threads).filter { ManifestLayout.isManifest($0.path) }
        let counts = ResultSlots<Int>(count: files.count)
        let workers = max(1, threads)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var index = worker
            while index < files.count {
                let parser = EventParser(bytes: files[index].bytes ?? [], libyamlOnly: true)
                var events = 0
                while let event = try? parser.next(), event.kind != .streamEnd { events += 1 }
                counts[index] = events
                index += workers
            }
        }
        Terminal.standardOutput.write("\(files.count) files, \(counts.values.reduce(0, +)) events\n")
    }
}
