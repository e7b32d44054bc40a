// The CLI's side of the HTTP API: one request, its answer or one CliError with the right exit code.
import { CliError, exitCodes, type ExitCode } from './exit-codes.js'

export interface Server {
  url: string
  token: string | undefined
}

interface ErrorBody {
  code?: string
  message?: string
}

const requestTimeoutMs = 30_000

function exitCodeOf(status: number, code: string | undefined): ExitCode {
  if (code === 'ACCMAN_NO_ACCOUNT') return exitCodes.noAccount
  if (code === 'ACCMAN_INSUFFICIENT_FUNDS') return exitCodes.insufficientFunds
  if (status === 400 || status === 422) return exitCodes.usage
  return exitCodes.other
}

export async function call(
  server: Server,
  method: 'GET' | 'PATCH',
  path: string,
  parameters: Record<string, string | undefined>,
  headers: Record<string, string> = {},
): Promise<string> {
  const url = new URL(path, server.url)
  for (const [name, value] of Object.entries(parameters)) if (value !== undefined) url.searchParams.set(name, value)
  if (server.token !== undefined) headers.authorization = `Bearer ${server.token}`
  let response: Response
  try {
    response = await fetch(url, { method, headers, signal: AbortSignal.timeout(requestTimeoutMs) })
  } catch (error) {
    // Never the URL: it carries the credential.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    const reason = cause?.code ?? cause?.message ?? (error as Error).message
    throw new CliError(`cannot reach AccMan at ${server.url} (${reason})`, exitCodes.unreachable)
  }
  const body = await response.text()
  if (response.ok) return body
  let parsed: ErrorBody = {}
  try {
    parsed = JSON.parse(body) as ErrorBody
  } catch {
    // not our error shape: a proxy, or not AccMan at all
  }
  const message = parsed.message ?? `HTTP ${response.status}`
  const code = parsed.code === undefined ? '' : ` (${parsed.code})`
  throw new CliError(`${message}${code}`, exitCodeOf(response.status, parsed.code))
}
