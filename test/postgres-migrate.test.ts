// `accman migrate`, run in this process against the test run's PostgreSQL server.
import { expect, test } from 'vitest'
import { exitCodes } from '../src/cli/exit-codes.js'
import { schemaVersionLatest } from '../src/ledger/postgres/migrations.js'
import { freshDatabase } from './postgres-support.js'
import { runHere } from './support.js'

test('accman migrate applies the migrations once and prints the schema version', async () => {
  const url = await freshDatabase()
  expect(await runHere(['migrate', '--db', url])).toEqual({ code: 0, stdout: `schema version ${schemaVersionLatest}\n`, stderr: '' })
  expect(await runHere(['migrate', '--db', url])).toEqual({ code: 0, stdout: `schema version ${schemaVersionLatest}\n`, stderr: '' })
})

test('accman migrate on a LevelDB path says there is nothing to migrate', async () => {
  expect(await runHere(['migrate', '--db', './data'])).toEqual({ code: 0, stdout: './data is a LevelDB directory: nothing to migrate\n', stderr: '' })
})

test('accman migrate with a wrong password fails without printing it', async () => {
  const url = new URL(await freshDatabase())
  url.password = 'Wrong-Secret-77'
  const result = await runHere(['migrate', '--db', url.toString()])
  expect(result.code).toBe(exitCodes.databaseUnavailable)
  expect(result.stderr).toContain(`${url.hostname}:${url.port}`)
  expect(result.stdout + result.stderr).not.toContain('Wrong-Secret-77')
})
