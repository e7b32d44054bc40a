// Refused starts of the server process: one clear line on stderr, nothing on stdout, exit 1.
import { describe, expect, test } from 'vitest'
import { ServerProcess, temporaryDirectories } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-serve-')

describe('a refused start is one line on stderr and nothing on stdout', () => {
  test.each([
    ['a directory that cannot be made under /proc', () => ({ ACCMAN_DB: '/proc/nope' }), /^accman: cannot open the database \/proc\/nope: ENOENT: cannot create \/proc\/nope$/],
    ['a directory two levels under /proc', () => ({ ACCMAN_DB: '/proc/nope/deeper' }), /^accman: cannot open the database \/proc\/nope\/deeper: ENOENT: cannot create \/proc\/nope$/],
    ['a path under a file', () => ({ ACCMAN_DB: '/etc/hostname/data' }), /^accman: cannot open the database \/etc\/hostname\/data: ENOTDIR/],
  ])('%s', async (_name, env, line) => {
    const server = new ServerProcess(env())
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(line)
    expect(server.stderr[0]).not.toContain('did not start in time')
    expect(server.lines).toEqual([])
  })

  test('a PostgreSQL server that does not answer: one line that names its host, never the password', async () => {
    const server = new ServerProcess({ ACCMAN_DB: 'postgres://accman:s3cret-pw@127.0.0.1:5/ledger', ACCMAN_DB_TIMEOUT_MS: '1000' })
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(/^accman: .*127\.0\.0\.1:5/)
    expect([...server.stderr, ...server.lines].join('\n')).not.toContain('s3cret-pw')
  })

  test('a port in use: the stderr line only, no fatal log line on stdout', async () => {
    const first = new ServerProcess({ ACCMAN_DB: temporaryDirectory() })
    const port = String(await first.port)
    const second = new ServerProcess({ ACCMAN_DB: temporaryDirectory(), ACCMAN_PORT: port })
    expect(await second.exited).toBe(1)
    expect(second.stderr).toEqual([`accman: 127.0.0.1:${port} is already in use`])
    expect(second.lines.filter((line) => line.includes('"level":60'))).toEqual([])
    expect(second.lines.some((line) => line.includes('already in use'))).toBe(false)
    expect(await first.kill('SIGTERM')).toBe(0)
  })
})
