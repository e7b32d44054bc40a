// What one run of the CLI works with: where its output goes, the secrets it has seen, the exit
// code its command asked for, and the configuration from the environment (and .env).
import { serverUrlProblem, tokenProblem } from '../client/connection.js'
import { ConfigError, loadDotEnv, parseCliConfig, type CliConfig } from '../config.js'
import { CliError, exitCodes, type ExitCode } from './exit-codes.js'
import type { Server } from './http.js'

/** An output stream as the CLI uses it; a terminal's `isTTY` and `columns` shape what it draws. */
export type CliStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number }

export interface CliIo {
  stdout: CliStream
  stderr: CliStream
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr }

export class CliContext {
  readonly io: CliIo
  /** Secrets this run knows of (credentials, the token): no line it prints may contain them. */
  readonly secrets = new Set<string>()
  /** Set by a command that completes but must still report failure (verify found faults). */
  exitCode: ExitCode = exitCodes.ok

  constructor(io: CliIo) {
    this.io = io
  }

  /** The CLI's variables, read when a command needs them: `--help` works with a broken .env. */
  config(): CliConfig {
    try {
      loadDotEnv()
      return parseCliConfig(process.env)
    } catch (error) {
      if (error instanceof ConfigError) throw new CliError(`invalid configuration: ${error.message}`, exitCodes.usage)
      throw new CliError(`cannot read .env: ${String(error)}`, exitCodes.usage)
    }
  }

  /** The server of the online commands, checked before anything is sent. */
  server(): Server {
    const { url, token, timeoutMs } = this.config()
    // Checked before anything is sent: fetch would quote a URL with a password, or a bad token, in its error.
    const urlProblem = serverUrlProblem(url)
    const problem = urlProblem ?? (token === undefined ? undefined : tokenProblem(token))
    if (token !== undefined) this.secrets.add(token)
    if (problem !== undefined) {
      const variable = urlProblem === undefined ? 'ACCMAN_TOKEN' : 'ACCMAN_URL'
      throw new CliError(`invalid configuration: ${variable}: ${problem}`, exitCodes.usage)
    }
    return { url, token, timeoutMs }
  }

  /** Any secret this run knows of, replaced: a last guard on every line written on failure. */
  redacted(line: string): string {
    let text = line
    for (const secret of this.secrets) {
      if (secret !== '') text = text.replaceAll(secret, '[redacted]').replaceAll(encodeURIComponent(secret), '[redacted]')
    }
    return text
  }
}
