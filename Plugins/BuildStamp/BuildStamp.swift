import Foundation
import PackagePlugin

/// Writes BuildStamp.swift into the `cohort` target before every build: the git commit the
/// executable was built from (with "-dirty" when the work tree had changes), for `--version`.
/// Without git, or outside a clone, the commit reads "unknown".
@main
struct BuildStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("BuildStamp.swift")
        // Rewrites the file only when the stamp changes, so an unchanged tree rebuilds nothing.
        let script = """
            commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            if [ "$commit" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
              commit="$commit-dirty"
            fi
            text="let buildCommit = \\"$commit\\""
            [ -f "$2" ] && [ "$(cat "$2")" = "$text" ] || printf '%s' "$text" > "$2"
            """
        return [.prebuildCommand(displayName: "Stamping the git commit into cohort",
                                 executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script, "stamp", context.package.directoryURL.path, output.path],
                                 outputFilesDirectory: context.pluginWorkDirectoryURL)]
    }
}
