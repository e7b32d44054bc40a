// Checks of the command-line arguments, made before anything leaves the machine. The messages
// name the argument and never repeat its value (it may be a credential).
import { credentialSyntax, isCredential, parseAmount } from '../contract/syntax.js'
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'

/** Checks a credential before it leaves the machine, and remembers it as a secret of this run. */
/** A credential argument, kept out of every message from now on; `name` is the argument's. */
export function checkCred(context: CliContext, cred: string, name = 'cred'): string {
  context.secrets.add(cred)
  if (!isCredential(cred)) throw new CliError(`${name} must be ${credentialSyntax}`, exitCodes.usage)
  return cred
}

export function checkBy(by: string): bigint {
  const parsed = parseAmount(by)
  if (parsed === undefined) throw new CliError('by must be a nonzero integer, at most 2^127 - 1 in magnitude', exitCodes.usage)
  return parsed
}

/** The opening credit of `accman new`: zero makes the credential only. */
export function checkOpeningCredit(by: string): void {
  if (!/^(0|[1-9][0-9]*)$/.test(by)) throw new CliError('by must be 0 or a positive integer', exitCodes.usage)
  if (by !== '0') checkBy(by)
}

/** A commander option parser for an integer from 0 to `max`. */
export function positiveInteger(name: string, max: number) {
  return (text: string): number => {
    if (!/^[0-9]{1,16}$/.test(text) || Number(text) > max) {
      throw new CliError(`${name} must be an integer from 0 to ${max}`, exitCodes.usage)
    }
    return Number(text)
  }
}
