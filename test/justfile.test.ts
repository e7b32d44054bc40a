// The justfile's recipes as an operator runs them, with a real just, server and database.
// .ci/run installs just and passes its path in JUST_BIN; elsewhere `just` on PATH is used.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runProcess, ServerProcess } from './support.js'

function findJust(): string | undefined {
  const candidate = process.env.JUST_BIN ?? 'just'
  try {
    execFileSync(candidate, ['--version'], { stdio: 'ignore' })
    return candidate
  } catch {
    return undefined
  }
}

const just = findJust()
if (just === undefined) console.warn('justfile tests skipped: no just binary (set JUST_BIN, or run bash .ci/run, which installs one)')

const runJust = (args: string[], env: Record<string, string>) => runProcess(just ?? 'just', args, env)

describe.runIf(just !== undefined)('justfile recipes', () => {
  const db = mkdtempSync(join(tmpdir(), 'accman-just-'))
  let server: ServerProcess
  let env: Record<string, string>

  beforeAll(async () => {
    server = new ServerProcess({ ACCMAN_DB: db })
    env = { ACCMAN_URL: await server.url(), ACCMAN_DB: db }
  })
  afterAll(async () => {
    await server.kill('SIGTERM')
    rmSync(db, { recursive: true, force: true })
  })

  test('just --list explains every recipe', async () => {
    const list = await runJust(['--list'], env)
    expect(list.code).toBe(0)
    const lines = list.stdout.split('\n')
    const recipes = ['start', 'dev', 'test', 'check', 'bench', 'tot', 'mod', 'move', 'freeze', 'unfreeze', 'past', 'acct', 'rotate', 'new', 'verify', 'export', 'import']
    for (const recipe of recipes) {
      const index = lines.findIndex((line) => line.trimStart().startsWith(`${recipe} `) || line.trim() === recipe)
      expect(index, recipe).toBeGreaterThan(0)
      // The comment is on the recipe's line, or on the line above when it does not fit.
      const explained = /# \S/.test(lines[index] ?? '') || /^\s+# \S/.test(lines[index - 1] ?? '')
      expect(explained, recipe).toBe(true)
    }
  })

  test('new, mod, tot and past through just, as the README shows', async () => {
    const created = await runJust(['new', '1000'], env)
    expect(created.code).toBe(0)
    const cred = created.stdout.trim()
    expect(cred).toMatch(/^[A-Za-z0-9_-]{43}=$/)
    expect((await runJust(['mod', cred, '-1'], env)).stdout).toBe('999\n')
    expect((await runJust(['tot', cred], env)).stdout).toBe('999\n')
    expect((await runJust(['tot'], { ...env, ACCMAN_CRED: cred })).stdout).toBe('999\n')
    const past = (await runJust(['past', cred], env)).stdout.split('\n').filter(Boolean)
    expect(past).toHaveLength(3)
    expect(past[2]).toMatch(/^ {2}2 .* -1 {3}999$/)
  })

  test('move, freeze and unfreeze through just', async () => {
    const from = (await runJust(['new', '100'], env)).stdout.trim()
    const to = (await runJust(['new', '1'], env)).stdout.trim()
    expect((await runJust(['move', from, to, '40'], env)).stdout).toBe('60\n')
    expect((await runJust(['tot', to], env)).stdout).toBe('41\n')
    expect((await runJust(['freeze', from], env)).stdout).toBe('frozen\n')
    expect((await runJust(['mod', from, '-1'], env)).code).toBe(1)
    expect((await runJust(['unfreeze', from], env)).stdout).toBe('unfrozen\n')
    expect((await runJust(['mod', from, '-1'], env)).stdout).toBe('59\n')
  })

  test('acct and rotate through just: the account, its balance and its public id follow the new credential', async () => {
    const old = (await runJust(['new', '50'], env)).stdout.trim()
    const fresh = (await runJust(['new'], env)).stdout.trim()
    const before = JSON.parse((await runJust(['acct', old], env)).stdout) as { account: string }
    expect(before).toMatchObject({ tot: '50', held: '0', avail: '50', seq: 1 })
    const rotated = await runJust(['rotate', old, fresh], env)
    expect(rotated.code).toBe(0)
    expect(JSON.parse(rotated.stdout)).toMatchObject({ account: before.account, tot: '50', seq: 2 })
    expect(rotated.stdout + rotated.stderr).not.toContain(old)
    expect(rotated.stdout + rotated.stderr).not.toContain(fresh)
    expect((await runJust(['tot', fresh], env)).stdout).toBe('50\n')
    const retired = await runJust(['tot', old], env)
    expect(retired.code).toBe(3)
    expect(retired.stderr).not.toContain(old)
  })

  test('a mistake is one line with the CLI exit code', async () => {
    const cred = (await runJust(['new', '5'], env)).stdout.trim()
    const overdraft = await runJust(['mod', cred, '-6'], env)
    expect(overdraft.code).toBe(4)
    expect(overdraft.stderr.trim().split('\n')).toEqual([expect.stringContaining('the balance is 5')])
    const bad = await runJust(['tot', 'bad=cred'], env)
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
    expect(bad.stderr).not.toContain('bad=cred')
    const held = await runJust(['verify'], env)
    expect(held.code).toBe(6)
    expect(held.stderr.trim().split('\n')).toEqual([expect.stringContaining('stop the server first')])
  })
})
