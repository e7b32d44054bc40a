// The accman command line: its commands, their help, and `run`, which parses one argv and answers
// the exit code. Online commands talk to the running server over HTTP (online.ts); offline ones
// open the database directory, which only works while the server is stopped (offline.ts).
import { createRequire } from 'node:module'
import { Command, CommanderError } from 'commander'
import { noteLengthMax, pageSizeDefault, pageSizeMax } from '../ledger/limits.js'
import { positiveInteger } from './arguments.js'
import { CliContext, type CliIo, type CliStream } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { commanderMessage, oneLine } from './format.js'
import { migrateStore } from './migrate.js'
import { exportTo, importFrom, verify } from './offline.js'
import { move, setFrozen } from './lifecycle.js'
import { backup, createAccount, mod, past, tot } from './online.js'
import { hold, holds, settle, voidHold } from './holds.js'
import { enableWebhook, retryWebhooks, webhooks } from './webhooks.js'
import { acct, graceSecondsMax, rotate } from './accounts.js'

/** The version of the package this CLI ships in (src/cli and dist/cli are both two levels down). */
function packageVersion(): string {
  const manifest = createRequire(import.meta.url)('../../package.json') as { version: string }
  return manifest.version
}

async function serve(): Promise<void> {
  // Loaded only for this command, so the other commands start without the server's modules.
  const { serve } = await import('../serve.js')
  await serve()
}

/** Help wraps at a terminal's width, and at commander's 80 columns anywhere else. */
const helpWidth = (stream: CliStream): number => (stream.isTTY === true && stream.columns !== undefined ? stream.columns : 80)

/** The commander program of one run; every command writes through `context.io`. */
export function program(context: CliContext): Command {
  const { stdout, stderr } = context.io
  const root = new Command('accman')
    .description('AccMan: prepaid accounts for metered APIs. Online commands use ACCMAN_URL; offline ones ACCMAN_DB.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => stdout.write(text),
      writeErr: (text) => stderr.write(text),
      getOutHelpWidth: () => helpWidth(stdout),
      getErrHelpWidth: () => helpWidth(stderr),
      // run() prints commander's errors itself, as one line without what was not understood.
      outputError: () => {},
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 other error, 2 usage, 3 no account, 4 insufficient funds,
5 server unreachable, 6 database in use or missing, 7 verify found faults,
8 idempotency key reused with another amount.
A credential that starts with '-' goes after '--': accman tot -- -abc`,
    )

  root
    .command('serve')
    .description('start the server (what npm start runs), configured by the ACCMAN_* variables')
    .addHelpText('after', '\nExample:\n  ACCMAN_PORT=8080 accman serve')
    .action(serve)

  root
    .command('tot')
    .description('print the balance of an account')
    .argument('<cred>', 'the account credential')
    .option('--json', 'print the server JSON {"tot","seq","held","avail"}', false)
    .addHelpText('after', '\nExample:\n  accman tot abcdefghijklmnopqrstuvwxyz0123456789-_==')
    .action((cred: string, options: { json: boolean }) => tot(context, cred, options))

  root
    .command('mod')
    .description('add an amount to a balance (negative to debit) and print the new balance')
    .argument('<cred>', 'the account credential')
    .argument('<by>', 'a nonzero integer; a credit creates the account')
    .option('--note <text>', `kept with the history entry (at most ${noteLengthMax} characters)`)
    .option('--key <idempotency-key>', 'retries with the same key are applied once')
    .option('--json', 'print the server JSON {"tot","seq","held","avail"}', false)
    .addHelpText('after', '\nExamples:\n  accman mod abcdefghijklmnopqrstuvwxyz0123456789-_== 1000 --note "invoice 42"\n  accman mod abcdefghijklmnopqrstuvwxyz0123456789-_== -1 --key req-7f3a')
    .action((cred: string, by: string, options: { json: boolean; note?: string; key?: string }) => mod(context, cred, by, options))

  root
    .command('move')
    .description("move an amount from one account to another, atomically, and print the sender's new balance")
    .argument('<cred>', 'the credential of the account the amount leaves')
    .argument('<to>', 'the credential of the account it goes to (it must exist)')
    .argument('<by>', 'a positive integer')
    .option('--note <text>', `kept with both history entries (at most ${noteLengthMax} characters)`)
    .option('--key <idempotency-key>', "retries with the same key are applied once (in the sender's key space)")
    .option('--json', 'print the server JSON {"move","tot","held","avail","seq"}', false)
    .addHelpText('after', '\nExample:\n  accman move abcdefghijklmnopqrstuvwxyz0123456789-_== dG8tYWNjb3VudA== 250 --note "merge accounts"')
    .action((cred: string, to: string, by: string, options: { json: boolean; note?: string; key?: string }) => move(context, cred, to, by, options))

  for (const frozen of [true, false]) {
    root
      .command(frozen ? 'freeze' : 'unfreeze')
      .description(frozen ? 'freeze an account: debits and moves out are refused until unfreeze' : 'lift the freeze of an account')
      .argument('<cred>', 'the account credential')
      .option('--json', 'print the server JSON {"tot","seq","frozen"}', false)
      .action((cred: string, options: { json: boolean }) => setFrozen(context, cred, frozen, options))
  }

  root
    .command('past')
    .description('print the history of an account as a table: seq, time, by, tot, note')
    .argument('<cred>', 'the account credential')
    .option('--limit <n>', `entries to show, 1 to ${pageSizeMax} (default ${pageSizeDefault})`, positiveInteger('limit', pageSizeMax))
    .option('--after <seq>', 'only entries after this seq', positiveInteger('after', Number.MAX_SAFE_INTEGER))
    .option('--desc', 'newest first', false)
    .option('--json', 'print the server JSON', false)
    .addHelpText('after', '\nExamples:\n  accman past abcdefghijklmnopqrstuvwxyz0123456789-_== --desc --limit 10\n  accman past abcdefghijklmnopqrstuvwxyz0123456789-_== --after 100')
    .action((cred: string, options: { json: boolean; limit?: number; after?: number; desc: boolean }) => past(context, cred, options))

  root
    .command('hold')
    .description('reserve an amount for a while (avail shrinks, tot stays) and print the server JSON with the hold id')
    .argument('<cred>', 'the account credential')
    .argument('<by>', 'a positive integer')
    .option('--ttl <seconds>', 'how long the hold lasts, 1 to 604800 (default 300)')
    .option('--note <text>', `kept with the history entry (at most ${noteLengthMax} characters)`)
    .option('--key <idempotency-key>', 'retries with the same key open one hold')
    .addHelpText('after', '\nExample:\n  accman hold abcdefghijklmnopqrstuvwxyz0123456789-_== 50 --ttl 60')
    .action((cred: string, by: string, options: { ttl?: string; note?: string; key?: string }) => hold(context, cred, by, options))

  root
    .command('settle')
    .description('post part or all of a hold as a debit, releasing the rest, and print the server JSON')
    .argument('<cred>', 'the account credential')
    .argument('<hold>', 'the hold id')
    .option('--by <amount>', 'the amount to post (default: the whole hold)')
    .option('--note <text>', 'kept with the history entry')
    .option('--key <idempotency-key>', 'retries with the same key are applied once')
    .addHelpText('after', '\nExample:\n  accman settle abcdefghijklmnopqrstuvwxyz0123456789-_== q3V1Yk9vX2hvbGRfaWQxMg --by 42')
    .action((cred: string, holdId: string, options: { by?: string; note?: string; key?: string }) => settle(context, cred, holdId, options))

  root
    .command('void')
    .description('release a whole hold and print the server JSON')
    .argument('<cred>', 'the account credential')
    .argument('<hold>', 'the hold id')
    .option('--note <text>', 'kept with the history entry')
    .option('--key <idempotency-key>', 'retries with the same key are applied once')
    .addHelpText('after', '\nExample:\n  accman void abcdefghijklmnopqrstuvwxyz0123456789-_== q3V1Yk9vX2hvbGRfaWQxMg')
    .action((cred: string, holdId: string, options: { note?: string; key?: string }) => voidHold(context, cred, holdId, options))

  root
    .command('holds')
    .description('print the active holds of an account as the server JSON')
    .argument('<cred>', 'the account credential')
    .addHelpText('after', '\nExample:\n  accman holds abcdefghijklmnopqrstuvwxyz0123456789-_==')
    .action((cred: string) => holds(context, cred))

  root
    .command('new')
    .description('make a fresh credential (32 random bytes), credit it with <by> when given, and print it')
    .argument('[by]', 'the opening credit; 0 makes the credential only', '0')
    .option('--note <text>', 'kept with the opening credit')
    .option('--json', 'print {"cred","account"}: the credential and the public id of its account (null without an opening credit)', false)
    .addHelpText('after', '\nExample:\n  cred=$(accman new 1000)')
    .action((by: string, options: { note?: string; json: boolean }) => createAccount(context, by, options))

  root
    .command('acct')
    .description('print the details of an account as JSON: public id, tot, held, avail, seq, created, updated')
    .argument('[cred]', 'the account credential (or --id)')
    .option('--id <public-id>', 'the public id of the account instead of its credential')
    .addHelpText('after', '\nExamples:\n  accman acct abcdefghijklmnopqrstuvwxyz0123456789-_==\n  accman acct --id acct_3q2-7wJ9kQm1xZpL0aB4cD')
    .action((cred: string | undefined, options: { id?: string }) => acct(context, cred, options))

  root
    .command('rotate')
    .description('point a new credential at the account of <cred> (balance, history and keys stay) and print the account as JSON')
    .argument('<cred>', 'the credential to replace')
    .argument('<new>', 'the new credential (e.g. from accman new); it must address no account')
    .option('--grace <seconds>', `how long <cred> keeps working too, 0 to ${graceSecondsMax} (default 0)`, positiveInteger('grace', graceSecondsMax))
    .option('--key <idempotency-key>', 'retries with the same key rotate once')
    .addHelpText('after', '\nExample:\n  accman rotate "$old" "$(accman new)" --grace 300')
    .action((cred: string, fresh: string, options: { grace?: number; key?: string }) => rotate(context, cred, fresh, options))

  const webhooksCommand = root
    .command('webhooks')
    .description('print each webhook endpoint: enabled or disabled, events pending, delivered, failed, the last error')
    .option('--json', 'print the server JSON', false)
    .addHelpText('after', '\nExamples:\n  accman webhooks\n  accman webhooks retry\n  accman webhooks enable https://billing.example.com/hooks')
    .action((options: { json: boolean }) => webhooks(context, options))
  webhooksCommand
    .command('retry')
    .description('send every failed event again, with a fresh retry window')
    .action(() => retryWebhooks(context))
  webhooksCommand
    .command('enable')
    .description('re-enable an endpoint that answered 410 Gone')
    .argument('<url>', 'the endpoint, exactly as in ACCMAN_WEBHOOK_URL')
    .action((url: string) => enableWebhook(context, url))

  const dbOption = '--db <dir>'
  const dbHelp = 'the database directory (default: ACCMAN_DB, or ./data)'
  root
    .command('verify')
    .description('check every account offline (server stopped): contiguous history, chained balances, no orphans')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExample:\n  accman verify --db ./data')
    .action((options: { db?: string }) => verify(context, options))

  root
    .command('migrate')
    .description('apply the schema migrations to the PostgreSQL store of ACCMAN_DB=postgres://... and print its schema version')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExample:\n  ACCMAN_DB=postgres://accman@db.internal/accman accman migrate')
    .action((options: { db?: string }) => migrateStore(context, options))

  root
    .command('export')
    .description('write every account and its history as JSON Lines, to <file> or stdout (server stopped)')
    .argument('[file]', 'the output file; stdout when omitted')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExamples:\n  accman export backup.jsonl\n  accman export | gzip > backup.jsonl.gz')
    .action((file: string | undefined, options: { db?: string }) => exportTo(context, file, options))

  root
    .command('backup')
    .description('write a consistent backup of the running server to <file> (export format; mods go on meanwhile)')
    .argument('<file>', 'the output file, written under a temporary name and renamed when complete')
    .addHelpText('after', '\nExamples:\n  accman backup backup.jsonl\n  accman import backup.jsonl --db ./restored')
    .action((file: string) => backup(context, file))

  root
    .command('import')
    .description('restore an export into an empty database, then verify it (server stopped)')
    .argument('<file>', 'a file written by accman export')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExample:\n  accman import backup.jsonl --db ./restored')
    .action((file: string, options: { db?: string }) => importFrom(context, file, options))

  return root
}

/**
 * Runs one command line (`argv` as in process.argv: node, the script, then the arguments) and
 * answers its exit code. Every failure is one line on `io.stderr`, never a stack trace, with every
 * secret the run has seen redacted.
 */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const context = new CliContext(io)
  try {
    await program(context).parseAsync(argv)
    return context.exitCode
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version') {
        return exitCodes.ok
      }
      io.stderr.write(`accman: ${context.redacted(commanderMessage(error))} (see accman --help)\n`)
      return exitCodes.usage
    }
    if (error instanceof CliError) {
      io.stderr.write(`accman: ${context.redacted(oneLine(error.message))}\n`)
      return error.exitCode
    }
    io.stderr.write(`accman: ${context.redacted(oneLine(error instanceof Error ? error.message : String(error)))}\n`)
    return exitCodes.other
  }
}
