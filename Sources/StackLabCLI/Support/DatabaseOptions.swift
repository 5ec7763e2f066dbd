import ArgumentParser
import StateStores

/// Where the state lives when it is shared: a PostgreSQL database, and how long a region's lease lasts.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Keep the state in this PostgreSQL database (postgres://user@host:port/db, or $STACKLAB_DATABASE), shared by several reconcilers; default: the embedded SQLite store in the state directory.",
        valueName: "url"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("With --database: seconds a region's lease lasts unrenewed (how soon a dead reconciler's regions move).", valueName: "s"))
    var leaseSeconds: Double = 15

    /// The store for `stateDirectory`, as a command (`apply`) or a long-running service (`serve`).
    func location(stateDirectory: String, role: String = "apply") throws -> StateLocation {
        do {
            return try StateLocation.resolve(database: database, stateDirectory: stateDirectory, leaseSeconds: leaseSeconds, role: role)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
