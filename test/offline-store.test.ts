// The offline commands and the server on paths that are not the store meant: nothing is created
// by mistake, and a store an import did not finish is never served.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { describe, expect, test } from 'vitest'
import { archiveHeader } from '../src/ledger/archive.js'
import { accountKeyOf } from '../src/ledger/index.js'
import { runCli, ServerProcess, temporaryDirectories } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-offline-')

function oneLine(text: string): string {
  const lines = text.split('\n').filter((line) => line !== '')
  expect(lines).toHaveLength(1)
  return lines[0] ?? ''
}

const accountKey = accountKeyOf('QUJDRA==')
function exportFile(): string {
  const file = join(temporaryDirectory(), 'backup.jsonl')
  const lines = [
    archiveHeader,
    JSON.stringify({ account: accountKey, tot: '5', seq: 1, atMs: 5 }),
    JSON.stringify({ seq: 1, by: '5', tot: '5', atMs: 5, key: 'k' }),
  ]
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

describe('verify', () => {
  test('a path that does not exist: one line, exit 6, and no directory made', async () => {
    const missing = join(temporaryDirectory(), 'typo')
    const run = await runCli(['verify', '--db', missing])
    expect(run.code).toBe(6)
    expect(oneLine(run.stderr)).toBe(`accman: no database at ${missing}`)
    expect(existsSync(missing)).toBe(false)
  })

  test('a directory that holds no store is left as it was', async () => {
    const directory = temporaryDirectory()
    writeFileSync(join(directory, 'notes.txt'), 'mine')
    const run = await runCli(['verify', '--db', directory])
    expect(run.code).toBe(6)
    expect(oneLine(run.stderr)).toBe(`accman: no database at ${directory}`)
    expect(readdirSync(directory)).toEqual(['notes.txt'])
  })
})

describe('import', () => {
  test('creates the target when its parent exists, or fills an empty directory', async () => {
    const file = exportFile()
    const fresh = join(temporaryDirectory(), 'restored')
    const created = await runCli(['import', file, '--db', fresh])
    expect(created.code).toBe(0)
    expect(created.stdout).toBe(`verify ${fresh}: 1 accounts, 1 entries, 1 idempotency keys: ok\n`)
    const empty = temporaryDirectory()
    const filled = await runCli(['import', file, '--db', empty])
    expect(filled.code).toBe(0)
    expect(existsSync(join(empty, 'CURRENT'))).toBe(true)
  })

  test('a target whose parent does not exist: one line, exit 2, nothing made', async () => {
    const parent = join(temporaryDirectory(), 'no-such-parent')
    const run = await runCli(['import', exportFile(), '--db', join(parent, 'db')])
    expect(run.code).toBe(2)
    expect(oneLine(run.stderr)).toBe(`accman: cannot import into ${join(parent, 'db')}: its parent directory does not exist`)
    expect(existsSync(parent)).toBe(false)
  })

  test('a directory with other files in it: one line, exit 2, left as it was', async () => {
    const directory = temporaryDirectory()
    mkdirSync(join(directory, 'photos'))
    const run = await runCli(['import', exportFile(), '--db', directory])
    expect(run.code).toBe(2)
    expect(oneLine(run.stderr)).toBe(`accman: cannot import into ${directory}: it is not a database nor an empty directory`)
    expect(readdirSync(directory)).toEqual(['photos'])
  })
})

describe('a store an import did not finish', () => {
  async function unfinished(): Promise<string> {
    const directory = join(temporaryDirectory(), 'db')
    expect((await runCli(['import', exportFile(), '--db', directory])).code).toBe(0)
    // What a crash between the marker and its removal leaves.
    const db = new ClassicLevel<string, string>(directory)
    await db.sublevel<string, string>('meta', {}).put('import-in-progress', '{"startedAtMs":1}')
    await db.close()
    return directory
  }

  test('the server refuses it with one line', async () => {
    const directory = await unfinished()
    const server = new ServerProcess({ ACCMAN_DB: directory })
    expect(await server.exited).toBe(1)
    expect(server.stderr).toEqual(['accman: cannot start: the database holds an unfinished import; delete it and import again'])
  })

  test('verify reports it and exits 7; import again refuses it', async () => {
    const directory = await unfinished()
    const run = await runCli(['verify', '--db', directory])
    expect(run.code).toBe(7)
    expect(run.stdout).toContain('fault: an import did not finish: the store is incomplete\n')
    const again = await runCli(['import', exportFile(), '--db', directory])
    expect(again.code).toBe(2)
    expect(oneLine(again.stderr)).toBe('accman: import refused: the database holds an unfinished import; delete it and import again')
  })
})
