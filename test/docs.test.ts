// The documentation is executed: every ```console transcript of the pages below runs, in the order
// shown, against a fresh server started as production starts it (`node dist/cli/main.js serve`),
// and each command's output must be the one written under it. `DOCS_UPDATE=1` rewrites the
// outputs with the real ones instead. Every relative link of the
// README and docs/ must name an existing file and heading.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { builtCli, ServerProcess, temporaryDirectories } from './support.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const update = process.env.DOCS_UPDATE === '1'
/** The pages whose transcripts run, each on its own fresh server. */
const executedPages = ['README.md', 'docs/http-api.md', 'docs/operations.md', 'docs/metering.md']
/** The address the docs show; the test substitutes the server's real one. */
const documentedHost = '127.0.0.1:22262'
const commandTimeoutMs = 30_000
const directory = temporaryDirectories('accman-docs-')

// ---------------------------------------------------------------------------------------------
// Reading transcripts

interface Command {
  /** Index of the `$ ` line in the page. */
  line: number
  text: string
  /** The output written under the command, without trailing blank lines. */
  output: string[]
  /** Lines the output occupies in the page, blank separators included. */
  outputLineCount: number
}

interface Block {
  /** Index of the opening fence. */
  line: number
  /** The `docs-test:` directive in an HTML comment just above the fence, if any. */
  directive: string | undefined
  commands: Command[]
}

function consoleBlocks(lines: string[]): Block[] {
  const blocks: Block[] = []
  for (let index = 0; index < lines.length; index++) {
    if (lines[index] !== '```console') continue
    let before = index - 1
    while (before >= 0 && lines[before]?.trim() === '') before--
    const directive = /^<!-- docs-test: (.*) -->$/.exec(lines[before] ?? '')?.[1]
    const block: Block = { line: index, directive, commands: [] }
    let end = index + 1
    while (end < lines.length && lines[end] !== '```') end++
    for (let at = index + 1; at < end; at++) {
      const text = lines[at] ?? ''
      if (!text.startsWith('$ ')) {
        if (block.commands.length === 0 && text.trim() !== '') {
          throw new Error(`line ${at + 1}: a console block starts with a $ command`)
        }
        continue
      }
      let next = at + 1
      while (next < end && !(lines[next] ?? '').startsWith('$ ')) next++
      const output = lines.slice(at + 1, next)
      const outputLineCount = output.length
      while (output.length > 0 && output[output.length - 1]?.trim() === '') output.pop()
      block.commands.push({ line: at, text: text.slice(2), output, outputLineCount })
      at = next - 1
    }
    blocks.push(block)
    index = end
  }
  return blocks
}

// ---------------------------------------------------------------------------------------------
// Times: the docs show real times from the run that wrote them. The n-th time of an expected
// output stands for the n-th time of the real output; a time written in a later command must be
// one shown before (in any zone), and is replaced by its real counterpart. A date alone moves by
// as many days as the first time shown did.

const isoTime = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g
const commandTime = /(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?)(Z|%2B\d\d:\d\d|\+\d\d:\d\d|-\d\d:\d\d)/g
const commandDate = /\b(\d{4}-\d\d-\d\d)\b(?!T)/g
const dayMs = 86_400_000

class Times {
  /** Documented instant (ms) -> real instant (ms). */
  readonly #real = new Map<number, number>()
  #dayShift = 0

  /** Pairs the times of an expected and a real output; answers the real output in documented times. */
  align(expected: string, actual: string): string {
    const shown = expected.match(isoTime) ?? []
    const seen = actual.match(isoTime) ?? []
    if (shown.length !== seen.length) return actual
    let position = 0
    return actual.replace(isoTime, (real) => {
      const documented = shown[position++] ?? real
      const documentedMs = Date.parse(documented)
      const known = this.#real.get(documentedMs)
      if (known === undefined) {
        if (this.#real.size === 0) this.#dayShift = Math.round((startOfDay(Date.parse(real)) - startOfDay(documentedMs)) / dayMs)
        this.#real.set(documentedMs, Date.parse(real))
        return documented
      }
      // A time already shown must come back as the same real time, or the diff shows it.
      return known === Date.parse(real) ? documented : real
    })
  }

  /** The command with its documented times replaced by the real ones. */
  substitute(command: string): string {
    return command
      .replace(commandTime, (text, clock: string, zone: string) => {
        const offsetMinutes = zoneMinutes(zone)
        const documentedMs = Date.parse(`${clock}${zone.replace('%2B', '+')}`)
        const real = this.#real.get(documentedMs)
        if (real === undefined) return text
        const local = new Date(real + offsetMinutes * 60_000).toISOString().slice(0, 19 + (clock.length > 19 ? clock.length - 19 : 0))
        return `${local}${zone}`
      })
      .replace(commandDate, (date: string) => new Date(Date.parse(date) + this.#dayShift * dayMs).toISOString().slice(0, 10))
  }
}

const startOfDay = (ms: number) => ms - (ms % dayMs)

function zoneMinutes(zone: string): number {
  if (zone === 'Z') return 0
  const match = /([+-]|%2B)(\d\d):(\d\d)/.exec(zone)
  if (match === null) return 0
  const sign = match[1] === '-' ? -1 : 1
  return sign * (Number(match[2]) * 60 + Number(match[3]))
}

// ---------------------------------------------------------------------------------------------
// What must vary takes the documented value where the real output has the same shape: the Date
// header, request ids, generated credentials and the random part of the plugin's idempotency keys.

const varying = [
  /(?<=^date: ).+ GMT$/gim,
  /(?<=^x-request-id: )[\x21-\x7e]{1,128}$/gim,
  /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])/g,
  /(?<="key":")[A-Za-z0-9_-]{16}(?=\.\d+\.)/g,
  /(?<="hold":")[A-Za-z0-9_-]{22}(?=")/g,
  // Public ids of accounts: derived from an internal id drawn at random when the account is made.
  /(?<="account":")acct_[A-Za-z0-9_-]{22}(?=")/g,
]

function normalise(output: string): string[] {
  const lines = output.replace(/\r/g, '').split('\n').map((line) => line.trimEnd())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  return lines
}

function keepVarying(expected: string, actual: string): string {
  return varying.reduce((text, pattern) => {
    const shown = expected.match(pattern) ?? []
    if (shown.length !== (text.match(pattern) ?? []).length) return text
    let position = 0
    return text.replace(pattern, (real) => shown[position++] ?? real)
  }, actual)
}

// ---------------------------------------------------------------------------------------------
// A bash session: one process per server, so variables (`cred=$(...)`) carry from command to command.

const doneMarker = '@@docs-test-done@@'

class Shell {
  readonly #child: ChildProcessWithoutNullStreams
  readonly #lines: string[] = []
  #waiting: (() => void) | undefined
  #exited = false

  constructor(cwd: string, env: Record<string, string>) {
    this.#child = spawn('bash', ['--noprofile', '--norc', '-s'], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, LANG: 'C.UTF-8', ...env },
      stdio: 'pipe',
    })
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      this.#lines.push(line)
      this.#waiting?.()
    })
    this.#child.stderr.on('data', (chunk: Buffer) => this.#lines.push(chunk.toString('utf8')))
    this.#child.on('exit', () => {
      this.#exited = true
      this.#waiting?.()
    })
    // `npx accman` is the built CLI, as in a checkout after `npm ci`.
    this.#child.stdin.write(`npx() { if [ "$1" = accman ]; then shift; node ${quote(builtCli)} "$@"; else command npx "$@"; fi; }\n`)
  }

  /** Runs one command line; answers what it wrote to stdout and stderr. Fails after a bounded wait. */
  async run(command: string): Promise<string> {
    this.#lines.length = 0
    // The group keeps variables in this shell; stdin is not the script's; $? survives the marker.
    this.#child.stdin.write(`{\n${command}\n} </dev/null 2>&1; __status=$?; printf '\\n%s\\n' '${doneMarker}'; (exit $__status)\n`)
    const deadline = Date.now() + commandTimeoutMs
    for (;;) {
      const end = this.#lines.indexOf(doneMarker)
      if (end >= 0) return this.#lines.slice(0, end).join('\n')
      if (this.#exited) throw new Error(`the shell exited while running: ${command}`)
      const leftMs = deadline - Date.now()
      if (leftMs <= 0) throw new Error(`no end of output within ${commandTimeoutMs} ms: ${command}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, leftMs)
        this.#waiting = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  close(): void {
    this.#child.stdin.end()
    if (!this.#exited) this.#child.kill('SIGTERM')
  }
}

const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

// ---------------------------------------------------------------------------------------------
// A session: a fresh server with its store in ./data of a fresh directory, and a shell there.

class Session {
  readonly server: ServerProcess
  readonly cwd: string
  host = ''
  #shell: Shell | undefined
  #stopped = false

  constructor(env: Record<string, string>) {
    this.cwd = directory()
    mkdirSync(join(this.cwd, 'data'))
    this.server = new ServerProcess({ ACCMAN_DB: join(this.cwd, 'data'), ...env }, this.cwd)
  }

  async start(): Promise<void> {
    this.host = `127.0.0.1:${await this.server.port}`
    this.#shell = new Shell(this.cwd, { ACCMAN_URL: `http://${this.host}` })
  }

  get shell(): Shell {
    if (this.#shell === undefined) throw new Error('the session has not started')
    return this.#shell
  }

  async stopServer(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    const code = await this.server.kill('SIGTERM')
    expect(code).toBe(0)
  }

  async close(): Promise<void> {
    this.#shell?.close()
    await this.stopServer()
  }
}

function parseEnvDirective(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const equals = pair.indexOf('=')
    if (equals <= 0) throw new Error(`docs-test env wants NAME=value pairs, not ${pair}`)
    env[pair.slice(0, equals)] = pair.slice(equals + 1)
  }
  return env
}

interface Result {
  command: Command
  /** The real output, normalised, with documented times and varying values where they matched. */
  compared: string[]
}

/** The paid-echo example as `npm run example` runs it, against the page's server, on a free port. */
class PaidEcho {
  readonly #child: ChildProcessWithoutNullStreams
  readonly #exited: Promise<void>
  readonly host: Promise<string>

  constructor(accmanUrl: string) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples/paid-echo/main.ts')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ACCMAN_URL: accmanUrl, HOST: '127.0.0.1', PORT: '0' },
      stdio: 'pipe',
    })
    this.#exited = new Promise((resolve) => this.#child.on('exit', () => resolve()))
    this.host = new Promise((resolve, reject) => {
      createInterface({ input: this.#child.stdout }).on('line', (line) => {
        const listening = /Server listening at http:\/\/(127\.0\.0\.1:\d+)/.exec(line)
        if (listening?.[1] !== undefined) resolve(listening[1])
      })
      void this.#exited.then(() => reject(new Error('paid-echo exited before listening')))
    })
    this.host.catch(() => {})
  }

  async close(): Promise<void> {
    this.#child.kill('SIGTERM')
    await this.#exited
  }
}

/** The address paid-echo's transcripts show. */
const documentedEchoHost = '127.0.0.1:3000'

async function runPage(page: string, lines: string[]): Promise<Result[]> {
  const results: Result[] = []
  const times = new Times()
  const sessions: Session[] = []
  const echoes: PaidEcho[] = []
  const open = async (env: Record<string, string>) => {
    const session = new Session(env)
    sessions.push(session)
    await session.start()
    return session
  }
  try {
    const main = await open({})
    /** Documented address -> real address, for commands; the reverse for outputs. */
    const hosts = new Map([[documentedHost, main.host]])
    for (const block of consoleBlocks(lines)) {
      let session = main
      const directive = block.directive ?? ''
      if (directive.startsWith('env ')) session = await open(parseEnvDirective(directive.slice(4)))
      else if (directive === 'stop-server') await main.stopServer()
      else if (directive === 'paid-echo') {
        const echo = new PaidEcho(`http://${main.host}`)
        echoes.push(echo)
        hosts.set(documentedEchoHost, await echo.host)
      } else if (directive !== '') throw new Error(`${page}:${block.line + 1}: unknown docs-test directive ${directive}`)
      const blockHosts = new Map([...hosts, [documentedHost, session.host]])
      for (const command of block.commands) {
        const ranText = times.substitute(command.text)
        let runnable = ranText
        for (const [documented, real] of blockHosts) runnable = runnable.replaceAll(documented, real)
        let raw = await session.shell.run(runnable)
        for (const [documented, real] of blockHosts) raw = raw.replaceAll(real, documented)
        const real = normalise(raw)
        const expected = command.output.map((line) => line.trimEnd())
        const aligned = normalise(times.align(expected.join('\n'), real.join('\n')))
        results.push({ command, compared: normalise(keepVarying(expected.join('\n'), aligned.join('\n'))) })
      }
      if (session !== main) await session.close()
    }
  } finally {
    for (const echo of echoes) await echo.close()
    for (const session of sessions) await session.close()
  }
  return results
}

/**
 * The page with every command's output replaced by the real one, in the documented times and
 * varying values wherever the real output has the same shape, so that a refresh changes only
 * what really changed.
 */
function rewrite(lines: string[], results: Result[]): string[] {
  const out = [...lines]
  for (const { command, compared } of [...results].reverse()) {
    const separator = command.outputLineCount > command.output.length ? [''] : []
    out.splice(command.line + 1, command.outputLineCount, ...compared, ...separator)
  }
  return out
}

// ---------------------------------------------------------------------------------------------

/** Each page's run, all started at once: every page has its own servers. */
const runs = new Map<string, Promise<Result[]>>()

beforeAll(() => {
  for (const page of executedPages) {
    const path = join(root, page)
    const lines = readFileSync(path, 'utf8').split('\n')
    const run = runPage(page, lines).then((results) => {
      if (update) writeFileSync(path, rewrite(lines, results).join('\n'))
      return results
    })
    run.catch(() => {}) // reported by the page's test
    runs.set(page, run)
  }
})

// A filtered run (`-t`) may skip a page's test: its servers must still be stopped.
afterAll(async () => {
  await Promise.allSettled(runs.values())
}, 300_000)

describe.each(executedPages)('%s', (page) => {
  const lines = readFileSync(join(root, page), 'utf8').split('\n')
  let results: Result[] = []

  beforeAll(async () => {
    results = (await runs.get(page)) ?? []
  }, 300_000)

  test('has transcripts to run', () => {
    expect(consoleBlocks(lines).length).toBeGreaterThan(0)
  })

  test('every transcript gives the output shown', () => {
    if (update) return
    expect(results.length).toBe(consoleBlocks(lines).flatMap((block) => block.commands).length)
    for (const { command, compared } of results) {
      expect.soft(compared.join('\n'), `${page}:${command.line + 1}: $ ${command.text}`).toBe(command.output.join('\n'))
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Links

const docsPages = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line)
    if (heading === null) continue
    const slug = (heading[1] ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    result.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return result
}

function links(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '')
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? '')
}

test.each(docsPages)('every relative link of %s names an existing file and heading', (page) => {
  const markdown = readFileSync(join(root, page), 'utf8')
  const broken: string[] = []
  for (const link of links(markdown)) {
    if (/^[a-z]+:/i.test(link)) continue
    const [file = '', anchor] = link.split('#')
    const target = file === '' ? join(root, page) : join(dirname(join(root, page)), file)
    if (!existsSync(target)) {
      broken.push(`${link}: no file ${relative(root, target)}`)
      continue
    }
    if (anchor !== undefined && !anchors(readFileSync(target, 'utf8')).has(anchor)) {
      broken.push(`${link}: no heading #${anchor} in ${relative(root, target)}`)
    }
  }
  expect(broken).toEqual([])
})
