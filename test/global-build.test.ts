// The test run's build step: dist/ is rebuilt whenever a source is newer than its build.
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'
import { staleSource } from './global-build.js'
import { temporaryDirectories } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-build-')

/** Writes `path` under `root` with its modification time `ageS` seconds in the past. */
function file(root: string, path: string, ageS: number): void {
  mkdirSync(dirname(join(root, path)), { recursive: true })
  writeFileSync(join(root, path), '')
  const at = Date.now() / 1000 - ageS
  utimesSync(join(root, path), at, at)
}

test('a source newer than its build, or without one, is stale; an older one is not', () => {
  const root = temporaryDirectory()
  file(root, 'src/cli/main.ts', 100)
  file(root, 'src/ledger/ledger.ts', 100)
  file(root, 'tsconfig.json', 100)
  expect(staleSource(root)).toBe('src/cli/main.ts')
  file(root, 'dist/cli/main.js', 50)
  expect(staleSource(root)).toBe('src/ledger/ledger.ts')
  file(root, 'dist/ledger/ledger.js', 50)
  expect(staleSource(root)).toBeUndefined()
  file(root, 'src/ledger/ledger.ts', 10)
  expect(staleSource(root)).toBe('src/ledger/ledger.ts')
  file(root, 'dist/ledger/ledger.js', 5)
  file(root, 'tsconfig.json', 1)
  expect(staleSource(root)).toBe('tsconfig.json')
})

test('the global setup left dist/ current, so the tests run what npm run build makes', () => {
  expect(staleSource(fileURLToPath(new URL('../', import.meta.url)))).toBeUndefined()
})
