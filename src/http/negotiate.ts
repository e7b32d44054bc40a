import Negotiator from 'negotiator'
import { ApiError } from './errors.js'

export type Representation = 'text' | 'json'

const textOrJson = ['text/plain', 'application/json']

/**
 * Plain text unless the Accept header prefers JSON, so curl and shell scripts read the bare
 * number. Refuses when the client accepts neither.
 */
export function representationOf(accept: string | undefined): Representation {
  // The common cases skip parsing. An empty Accept counts as none (it would admit nothing).
  if (accept === undefined || accept === '*/*' || accept === '') return 'text'
  if (accept === 'application/json') return 'json'
  const best = new Negotiator({ headers: { accept } }).mediaType(textOrJson)
  if (best === 'application/json') return 'json'
  if (best === 'text/plain') return 'text'
  throw new ApiError('ACCMAN_NOT_ACCEPTABLE', 'this endpoint answers text/plain or application/json')
}

/** For JSON-only endpoints. An empty Accept, like none, takes anything. */
export function requireJson(accept: string | undefined): void {
  if (accept === undefined || accept === '' || accept === '*/*' || accept === 'application/json') return
  if (new Negotiator({ headers: { accept } }).mediaType(['application/json']) === undefined) {
    throw new ApiError('ACCMAN_NOT_ACCEPTABLE', 'this endpoint answers application/json')
  }
}
