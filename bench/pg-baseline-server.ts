// The baseline of the PostgreSQL bench: the straightforward design at its best. A bare Fastify
// server whose PATCH /mod runs one transaction per mod through `pg` with AccMan's pool size: lock
// the account row, update it, insert the history row, commit. GET /tot reads one row. No
// validation, no idempotency, no logs: what is left is the cost of the transaction and HTTP.
import Fastify from 'fastify'
import pg from 'pg'

const pool = new pg.Pool({ connectionString: process.env.PG_URL, max: Number(process.env.POOL_MAX ?? 20) })
const app = Fastify({ logger: false })

app.patch<{ Querystring: { cred: string; by: string } }>('/mod', async (request, reply) => {
  const { cred, by } = request.query
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const locked = await client.query<{ tot: string; seq: string }>('SELECT tot::text, seq FROM accounts WHERE account_key = $1 FOR UPDATE', [cred])
    const row = locked.rows[0]
    if (row === undefined) {
      await client.query('ROLLBACK')
      return await reply.code(404).send('no account')
    }
    const tot = BigInt(row.tot) + BigInt(by)
    const seq = Number(row.seq) + 1
    const atMs = Date.now()
    await client.query('UPDATE accounts SET tot = $2, seq = $3, at = $4 WHERE account_key = $1', [cred, tot.toString(), seq, atMs])
    await client.query('INSERT INTO entries (account_key, seq, by, tot, at) VALUES ($1, $2, $3, $4, $5)', [cred, seq, by, tot.toString(), atMs])
    await client.query('COMMIT')
    return tot.toString()
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
})

app.get<{ Querystring: { cred: string } }>('/tot', async (request, reply) => {
  const rows = (await pool.query<{ tot: string }>('SELECT tot::text FROM accounts WHERE account_key = $1', [request.query.cred])).rows
  return rows[0] === undefined ? await reply.code(404).send('no account') : rows[0].tot
})

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
const address = app.server.address()
process.stdout.write(`${JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`)
