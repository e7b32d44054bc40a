// Once per test run (and per rerun in watch mode): build dist/ when a source is newer than its
// build, so the tests start the server and the CLI as production runs them, from dist/.
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'

const repositoryRoot = fileURLToPath(new URL('../', import.meta.url))

/** A file under `root` whose build is missing or older than it, or undefined when dist/ is current. */
export function staleSource(root: string): string | undefined {
  const sources = (folder: string): string[] =>
    readdirSync(join(root, folder), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(folder, entry.name)) : entry.name.endsWith('.ts') ? [join(folder, entry.name)] : [],
    )
  const modifiedMs = (path: string) => statSync(join(root, path), { throwIfNoEntry: false })?.mtimeMs
  const builtMs = (source: string) => modifiedMs(join('dist', source.slice('src/'.length).replace(/\.ts$/, '.js')))
  for (const source of sources('src')) {
    const built = builtMs(source)
    if (built === undefined || built < (modifiedMs(source) ?? 0)) return source
  }
  // tsc rewrites every output, so the bin's age is the build's.
  const bin = builtMs('src/cli/main.ts') ?? 0
  return ['tsconfig.json', 'tsconfig.build.json'].find((file) => (modifiedMs(file) ?? 0) > bin)
}

function buildIfStale(): void {
  const stale = staleSource(repositoryRoot)
  if (stale === undefined) return
  console.log(`dist/ is older than ${stale}: npm run build`)
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: repositoryRoot, stdio: 'pipe' })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: Buffer; stderr?: Buffer }
    throw new Error(`npm run build failed:\n${stdout?.toString() ?? ''}${stderr?.toString() ?? ''}`, { cause: error })
  }
  const still = staleSource(repositoryRoot)
  if (still !== undefined) throw new Error(`dist/ is still older than ${still} after npm run build`)
}

export default function setup(project: TestProject): void {
  buildIfStale()
  project.onTestsRerun(() => buildIfStale())
}
